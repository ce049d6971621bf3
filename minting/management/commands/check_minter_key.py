from django.core.management.base import CommandError

from core.management.base import RefusingCommand
from minting.chain import ChainError
from minting.services.rotation import configured_minter_address, minter_key_check


class Command(RefusingCommand):
    help = (
        "Can this key mint? MINTER_ROLE, gas against MINTER_MIN_GAS_ETH and the chain nonces "
        "(latest, pending) of any address; for a key this system has signed with (the "
        "current MINTER_PRIVATE_KEY, or the old one during a rotation) also the sending "
        "switch and the mint transactions still in flight. Exits non-zero with one sentence "
        "when the key cannot mint or the chain cannot be read. Writes nothing, opens no alert "
        "(check_minter does that for the configured key)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--address",
            help="the key's address (0x…); the address of MINTER_PRIVATE_KEY when left out",
        )

    def handle(self, *args, address=None, **options):
        address = address or configured_minter_address()
        if not address:
            raise CommandError("MINTER_PRIVATE_KEY is not set; name the key with --address.")
        try:
            key = minter_key_check(address=address)
        except ChainError as exc:
            raise CommandError(
                f"The chain could not be read, so {address} was not checked: {exc}"
            ) from None
        out = self.stdout.write
        out(f"address {key.address}{' (MINTER_PRIVATE_KEY)' if key.is_configured else ''}")
        out(f"token {key.contract_address} paused={key.paused}")
        out(f"MINTER_ROLE={key.has_minter_role}")
        out(f"gas {key.balance} (minimum {key.minimum}) {'ok' if key.gas_ok else 'LOW'}")
        out(f"nonce latest={key.latest_nonce} pending={key.pending_nonce}")
        if key.ledger is not None:
            out(
                f"sending {'enabled' if key.sending_enabled else 'stopped'}"
                + ("" if key.sending_enabled else f" ({key.ledger.disabled_reason or '—'})")
                + f"; ledger next nonce {key.ledger.next_nonce}, "
                f"last mined {key.ledger.last_mined_nonce}"
            )
            out(f"in flight: {len(key.in_flight)}")
            for attempt in key.in_flight:
                out(
                    f"  nonce {attempt.nonce} {attempt.kind} {attempt.status} {attempt.tx_hash} "
                    f"deposit={attempt.deposit_id or '—'}"
                )
        elif key.is_configured:
            out("sending: no ledger yet (the first batch creates it at the chain's nonce)")
        if key.problems:
            raise CommandError(f"{key.address} cannot mint: {'; '.join(key.problems)}.")
        out("OK: this key can mint")
