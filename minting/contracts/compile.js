#!/usr/bin/env node
// Compiles NTZS.sol with the pinned solc-js into the committed artifact NTZS.json.
//
//   node minting/contracts/compile.js                   write the artifact
//   node minting/contracts/compile.js --check           exit 1 if the artifact is stale
//   node minting/contracts/compile.js --artifact PATH   use another artifact path (tests)
//   ... --source PATH --contract NAME                   compile another contract (tests: the
//                                                       legacy token without deposit refs)
//
// The output must be byte-for-byte reproducible so that `--check` can guard the committed file:
// fixed settings, no metadata hash tied to absolute paths, fixed key order.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const CONTRACT_DIR = __dirname;
const REPO_ROOT = path.resolve(CONTRACT_DIR, "..", "..");
const NODE_MODULES = path.join(REPO_ROOT, "node_modules");
let SOURCE_NAME = "NTZS.sol";
let CONTRACT_NAME = "NTZS";
let SOURCE_PATH = path.join(CONTRACT_DIR, SOURCE_NAME);
const DEFAULT_ARTIFACT = path.join(CONTRACT_DIR, "NTZS.json");

const solc = require(path.join(NODE_MODULES, "solc"));

function parseArgs(argv) {
  const options = { check: false, artifact: DEFAULT_ARTIFACT };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === "--check") {
      options.check = true;
    } else if (arg === "--artifact" && i + 1 < argv.length) {
      options.artifact = path.resolve(argv[i + 1]);
      i += 1;
    } else if (arg === "--source" && i + 1 < argv.length) {
      SOURCE_PATH = path.resolve(argv[i + 1]);
      SOURCE_NAME = path.basename(SOURCE_PATH);
      i += 1;
    } else if (arg === "--contract" && i + 1 < argv.length) {
      CONTRACT_NAME = argv[i + 1];
      i += 1;
    } else {
      fail(`Unknown argument ${arg}; usage: compile.js [--check] [--artifact PATH].`);
    }
  }
  return options;
}

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

// Only package imports are resolved, and only inside node_modules, so the compiled result
// cannot depend on files lying around elsewhere on the machine.
function findImport(importPath) {
  if (!importPath.startsWith("@openzeppelin/")) {
    return { error: `Import ${importPath} is not allowed (only @openzeppelin/...)` };
  }
  const resolved = path.join(NODE_MODULES, importPath);
  if (!resolved.startsWith(NODE_MODULES + path.sep) || !fs.existsSync(resolved)) {
    return { error: `Import ${importPath} not found in node_modules` };
  }
  return { contents: fs.readFileSync(resolved, "utf8") };
}

function compilerInput(source) {
  return {
    language: "Solidity",
    sources: { [SOURCE_NAME]: { content: source } },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: "prague",
      metadata: { bytecodeHash: "ipfs" },
      outputSelection: {
        [SOURCE_NAME]: {
          [CONTRACT_NAME]: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"],
        },
      },
    },
  };
}

function compile(source) {
  const output = JSON.parse(
    solc.compile(JSON.stringify(compilerInput(source)), { import: findImport }),
  );
  const diagnostics = output.errors || [];
  const problems = diagnostics.filter((e) => e.severity === "error");
  if (problems.length > 0) {
    const details = problems.map((e) => e.formattedMessage).join("\n");
    fail(`Compilation of ${SOURCE_NAME} failed:\n${details}`);
  }
  // Warnings do not change the output, but they should not go unnoticed either.
  for (const warning of diagnostics) process.stderr.write(warning.formattedMessage);
  const contract = output.contracts[SOURCE_NAME][CONTRACT_NAME];
  return {
    contractName: CONTRACT_NAME,
    compiler: solc.version(),
    sourceSha256: crypto.createHash("sha256").update(source, "utf8").digest("hex"),
    abi: contract.abi,
    bytecode: `0x${contract.evm.bytecode.object}`,
    deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
  };
}

// Recursively sorted keys: solc's own ordering is stable today, but nothing promises it.
function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortKeys(value[key])]),
    );
  }
  return value;
}

function render(artifact) {
  return `${JSON.stringify(sortKeys(artifact), null, 2)}\n`;
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  const source = fs.readFileSync(SOURCE_PATH, "utf8");
  const rendered = render(compile(source));
  if (!options.check) {
    fs.writeFileSync(options.artifact, rendered);
    process.stdout.write(`Wrote ${path.relative(process.cwd(), options.artifact)}\n`);
    return;
  }
  const shown = path.relative(process.cwd(), options.artifact) || options.artifact;
  if (!fs.existsSync(options.artifact)) {
    fail(`${shown} is missing; run node minting/contracts/compile.js and commit the result.`);
  }
  if (fs.readFileSync(options.artifact, "utf8") !== rendered) {
    fail(
      `${shown} is out of date with ${SOURCE_NAME}; ` +
        "run node minting/contracts/compile.js and commit the result.",
    );
  }
}

main();
