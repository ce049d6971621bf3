// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// @notice On-chain idempotency for deposit-backed mints (DESIGN 7.5). Its ERC-165 id is the XOR
/// of the three function selectors, so the back office can detect the feature on any token.
interface INTZSDepositRef {
    event DepositMinted(bytes32 indexed depositRef, address indexed to, uint256 amount);
    event DepositRefVoided(bytes32 indexed depositRef);

    function mintForDeposit(address to, uint256 amount, bytes32 depositRef) external;

    function isDepositMinted(bytes32 depositRef) external view returns (bool);

    function voidDepositRef(bytes32 depositRef) external;
}

/// @dev solc refuses an event and an error with the same name in one contract scope, and the
/// back office needs both spelled `DepositRefVoided`. The error therefore lives here; its ABI
/// entry and selector are the same as if it were declared in the token itself.
library NTZSDepositRefErrors {
    error DepositRefVoided(bytes32 depositRef);
}

/// @title nTZS, a Tanzanian-shilling stablecoin
/// @notice Role-gated ERC-20 with pause, freeze (cannot send), blacklist (cannot send or receive)
/// and a wipe of blacklisted balances.
/// @dev Role choices:
/// - The constructor grants only DEFAULT_ADMIN_ROLE. Operational roles are granted explicitly
///   (deploy command, Safe) so that every power on chain is visible as a RoleGranted event and the
///   deployer key never silently holds minting rights.
/// - The last DEFAULT_ADMIN_ROLE holder can never be removed (renounce or revoke): a token with
///   no admin could no longer rotate a compromised minter.
/// - `burn(from, amount)` burns the burner's own balance, or another holder's within the
///   allowance that holder gave the burner (redemption flow). Destroying an unwilling holder's
///   funds is only possible through `wipeBlacklisted`.
contract NTZS is ERC20, AccessControl, Pausable, INTZSDepositRef {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");
    bytes32 public constant BURNER_ROLE = keccak256("BURNER_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    bytes32 public constant FREEZER_ROLE = keccak256("FREEZER_ROLE");
    bytes32 public constant BLACKLISTER_ROLE = keccak256("BLACKLISTER_ROLE");
    bytes32 public constant WIPER_ROLE = keccak256("WIPER_ROLE");

    bytes4 public constant DEPOSIT_REF_INTERFACE_ID = type(INTZSDepositRef).interfaceId;

    enum DepositRefState {
        Unused,
        Minted,
        Voided
    }

    mapping(address account => bool) private _frozen;
    mapping(address account => bool) private _blacklisted;
    mapping(bytes32 depositRef => DepositRefState) private _depositRefs;
    uint256 private _adminCount;

    event Frozen(address indexed account);
    event Unfrozen(address indexed account);
    event Blacklisted(address indexed account);
    event Unblacklisted(address indexed account);
    event Wiped(address indexed account, uint256 amount);

    error AccountFrozen(address account);
    error AccountBlacklisted(address account);
    error AccountNotBlacklisted(address account);
    error DepositAlreadyMinted(bytes32 depositRef);
    error InvalidDepositRef();
    error LastAdminCannotLeave();
    error ZeroAdmin();

    constructor(address admin) ERC20("nTZS", "nTZS") {
        if (admin == address(0)) revert ZeroAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ----- supply -----

    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }

    function burn(address from, uint256 amount) external onlyRole(BURNER_ROLE) {
        if (from != _msgSender()) _spendAllowance(from, _msgSender(), amount);
        _burn(from, amount);
    }

    /// @dev Transfer (from zero) is emitted before DepositMinted, so the pair sits at consecutive
    /// log indexes and the back office can claim the Transfer right before its DepositMinted.
    function mintForDeposit(address to, uint256 amount, bytes32 depositRef)
        external
        onlyRole(MINTER_ROLE)
    {
        _requireUnusedRef(depositRef);
        _depositRefs[depositRef] = DepositRefState.Minted;
        _mint(to, amount);
        emit DepositMinted(depositRef, to, amount);
    }

    /// @dev Allowed while paused: making a reference unusable moves no funds, and during an
    /// incident it is exactly what lets a stuck deposit be routed back safely.
    function voidDepositRef(bytes32 depositRef) external onlyRole(MINTER_ROLE) {
        _requireUnusedRef(depositRef);
        _depositRefs[depositRef] = DepositRefState.Voided;
        emit DepositRefVoided(depositRef);
    }

    function isDepositMinted(bytes32 depositRef) external view returns (bool) {
        return _depositRefs[depositRef] == DepositRefState.Minted;
    }

    function isDepositRefVoided(bytes32 depositRef) external view returns (bool) {
        return _depositRefs[depositRef] == DepositRefState.Voided;
    }

    // ----- compliance -----

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    function freeze(address account) external onlyRole(FREEZER_ROLE) {
        if (_frozen[account]) return;
        _frozen[account] = true;
        emit Frozen(account);
    }

    function unfreeze(address account) external onlyRole(FREEZER_ROLE) {
        if (!_frozen[account]) return;
        _frozen[account] = false;
        emit Unfrozen(account);
    }

    function blacklist(address account) external onlyRole(BLACKLISTER_ROLE) {
        if (_blacklisted[account]) return;
        _blacklisted[account] = true;
        emit Blacklisted(account);
    }

    function unblacklist(address account) external onlyRole(BLACKLISTER_ROLE) {
        if (!_blacklisted[account]) return;
        _blacklisted[account] = false;
        emit Unblacklisted(account);
    }

    /// @dev Goes straight to ERC20._update so that neither the pause nor a freeze can shield a
    /// blacklisted balance from a court-ordered wipe.
    function wipeBlacklisted(address account) external onlyRole(WIPER_ROLE) {
        if (!_blacklisted[account]) revert AccountNotBlacklisted(account);
        uint256 amount = balanceOf(account);
        super._update(account, address(0), amount);
        emit Wiped(account, amount);
    }

    function isFrozen(address account) external view returns (bool) {
        return _frozen[account];
    }

    function isBlacklisted(address account) external view returns (bool) {
        return _blacklisted[account];
    }

    // ----- administration -----

    /// @notice The deploying key gives up its admin power once the operators' admin (a Safe)
    /// holds DEFAULT_ADMIN_ROLE; refused while the caller is the only admin.
    function renounceDeployerAdmin() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _revokeRole(DEFAULT_ADMIN_ROLE, _msgSender());
    }

    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == DEPOSIT_REF_INTERFACE_ID || super.supportsInterface(interfaceId);
    }

    /// @dev A blacklisted spender must not move anyone's funds through an old allowance.
    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        _requireNotBlacklisted(_msgSender());
        return super.transferFrom(from, to, value);
    }

    // ----- internals -----

    function _update(address from, address to, uint256 value) internal override {
        _requireNotPaused();
        if (from != address(0)) {
            _requireNotBlacklisted(from);
            if (_frozen[from]) revert AccountFrozen(from);
        }
        if (to != address(0)) _requireNotBlacklisted(to);
        super._update(from, to, value);
    }

    function _grantRole(bytes32 role, address account) internal override returns (bool granted) {
        granted = super._grantRole(role, account);
        if (granted && role == DEFAULT_ADMIN_ROLE) _adminCount += 1;
    }

    function _revokeRole(bytes32 role, address account) internal override returns (bool revoked) {
        if (role == DEFAULT_ADMIN_ROLE && _adminCount == 1 && hasRole(role, account)) {
            revert LastAdminCannotLeave();
        }
        revoked = super._revokeRole(role, account);
        if (revoked && role == DEFAULT_ADMIN_ROLE) _adminCount -= 1;
    }

    function _requireUnusedRef(bytes32 depositRef) private view {
        if (depositRef == bytes32(0)) revert InvalidDepositRef();
        DepositRefState state = _depositRefs[depositRef];
        if (state == DepositRefState.Minted) revert DepositAlreadyMinted(depositRef);
        if (state == DepositRefState.Voided) {
            revert NTZSDepositRefErrors.DepositRefVoided(depositRef);
        }
    }

    function _requireNotBlacklisted(address account) private view {
        if (_blacklisted[account]) revert AccountBlacklisted(account);
    }
}
