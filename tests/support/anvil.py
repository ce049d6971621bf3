"""A real anvil node in a subprocess, for tests that need an actual EVM chain."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ANVIL_BIN = REPO_ROOT / "node_modules" / ".bin" / "anvil"
DEFAULT_CHAIN_ID = 31337
START_TIMEOUT_S = 10.0

# The accounts anvil funds by default (mnemonic "test test test test test test test test test
# test test junk", m/44'/60'/0'/0/i). Public knowledge: never use them on a real network.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_PRIVATE_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)
DEV_ADDRESSES = (
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
    "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
)


class AnvilError(RuntimeError):
    pass


class RpcError(AnvilError):
    def __init__(self, method: str, error: dict[str, Any]):
        self.method = method
        self.error = error
        super().__init__(f"{method} failed: {error}")


def anvil_binary() -> str:
    return os.environ.get("ANVIL_BIN") or str(DEFAULT_ANVIL_BIN)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AnvilNode:
    """One anvil process. Starts in the constructor; call stop() (or use it as a context)."""

    def __init__(
        self,
        chain_id: int = DEFAULT_CHAIN_ID,
        block_time: float | None = None,
        state: str | os.PathLike[str] | None = None,
        load_state: str | os.PathLike[str] | None = None,
        extra_args: tuple[str, ...] = (),
        slots_in_an_epoch: int | None = None,
    ):
        """``slots_in_an_epoch``: the ``safe`` head lags ``latest`` by that many blocks and
        ``finalized`` by twice as many (anvil's default keeps both at block 0)."""
        self.chain_id = chain_id
        if slots_in_an_epoch is not None:
            extra_args = (*extra_args, "--slots-in-an-epoch", str(slots_in_an_epoch))
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._session = requests.Session()
        self._request_id = 0
        # A file, not a pipe: nobody reads anvil's output while it runs, and a full pipe would
        # block it.
        self._stderr = tempfile.TemporaryFile()
        # Anvil writes the states it no longer keeps in memory under ~/.foundry/anvil/tmp and
        # leaves them there when stopped: gigabytes per long session with 1-second blocks. A
        # directory of our own, removed with the node, keeps the disk from filling up.
        self._cache_dir = tempfile.mkdtemp(prefix="ntzs-anvil-")
        extra_args = (*extra_args, "--cache-path", self._cache_dir)
        args = self._command(chain_id, block_time, state, load_state, extra_args)
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def _command(
        self,
        chain_id: int,
        block_time: float | None,
        state: str | os.PathLike[str] | None,
        load_state: str | os.PathLike[str] | None,
        extra_args: tuple[str, ...],
    ) -> list[str]:
        args = [
            anvil_binary(),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--chain-id", str(chain_id),
            "--silent",
        ]  # fmt: skip
        if block_time is not None:
            args += ["--block-time", f"{block_time:g}"]
        if state is not None:
            args += ["--state", os.fspath(state)]
        if load_state is not None:
            args += ["--load-state", os.fspath(load_state)]
        return args + list(extra_args)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AnvilError(
                    f"anvil exited with code {self.process.returncode}: {self.stderr_text()}"
                )
            try:
                if int(self.rpc("eth_chainId"), 16) == self.chain_id:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AnvilError(
            f"anvil did not answer on {self.url} within {START_TIMEOUT_S:g} s: {self.stderr_text()}"
        )

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace").strip() or "(no output)"

    def rpc(self, method: str, *params: Any) -> Any:
        """Plain JSON-RPC call; returns `result` or raises RpcError."""
        self._request_id += 1
        payload = {"jsonrpc": "2.0", "id": self._request_id, "method": method, "params": params}
        response = self._session.post(self.url, json=payload, timeout=10)
        response.raise_for_status()
        body = response.json()
        if "error" in body:
            raise RpcError(method, body["error"])
        return body["result"]

    def snapshot(self) -> str:
        return self.rpc("evm_snapshot")

    def revert(self, snapshot_id: str) -> None:
        """Back to a snapshot. Snapshots are single-use: take a new one after reverting."""
        # Pending transactions are not part of a snapshot and would be mined into the restored
        # chain, leaking one test's transactions into the next.
        self.rpc("anvil_dropAllTransactions")
        if self.rpc("evm_revert", snapshot_id) is not True:
            raise AnvilError(f"evm_revert refused snapshot {snapshot_id}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._session.close()
        self._stderr.close()
        shutil.rmtree(self._cache_dir, ignore_errors=True)

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
