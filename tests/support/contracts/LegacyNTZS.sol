// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

// A stand-in for the token already deployed on Base Sepolia: the same roles, mint, pause and
// blacklist surface, but no mintForDeposit / deposit references. Tests only: the pipeline must
// detect it (ERC-165 says no) and mint with plain `mint`.
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

contract LegacyNTZS is ERC20, AccessControl, Pausable {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    mapping(address => bool) private _blacklisted;
    mapping(address => bool) private _frozen;

    constructor(address admin) ERC20("nTZS", "nTZS") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) whenNotPaused {
        _mint(to, amount);
    }

    function pause() external onlyRole(DEFAULT_ADMIN_ROLE) { _pause(); }

    function isBlacklisted(address account) external view returns (bool) {
        return _blacklisted[account];
    }

    function isFrozen(address account) external view returns (bool) {
        return _frozen[account];
    }
}
