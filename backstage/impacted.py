"""Impacted addresses (issue 15 point 2; DESIGN §9 "incident record and report"): after a
suspicious mint, where the money is and where it went.

One form takes an address or a transaction hash (also as ``?address=`` / ``?tx=``, how an
incident record links here; ``?q=`` is the form's own field):

- an address: its balance, ``isFrozen`` and ``isBlacklisted`` read live from the token, its
  indexed transfers in and out (newest first, a page at a time), the customers whose wallet
  it is and the deposits to it;
- a transaction: its transfers, the transfers onward from its recipients for N hops
  (``?hops=``, default 2, at most 5; see ``reconciliation.selectors.transaction_impact`` for
  what "onward" means and how a hop is capped), every address touched with its live state
  and customer, and the deposits it minted.

The screen and the CSV export are rendered from the same ``ImpactedLine`` list, built once
per request from the selectors: the CSV is exactly the screen's rows, including the notes
that say when a list was cut. Compliance officers and super admins read it; bank admins
do not (it names customers of every bank). Reads only: nothing here writes."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext as _

from core.money import units_as_ntzs
from core.roles import PLATFORM_COMPLIANCE, SUPER_ADMIN, user_has_role
from core.templatetags.site_time import site_time_format
from deposits.selectors import tx_explorer_url
from reconciliation.selectors import (
    IMPACT_PAGE_SIZE,
    ONWARD_HOPS_DEFAULT,
    ONWARD_HOPS_MAX,
    ONWARD_ROWS_PER_HOP,
    STATE_READS_MAX,
    ChainState,
    ImpactQueryError,
    TransferPosition,
    address_chain_states,
    address_customers,
    address_links,
    address_transfers,
    impact_address_normalise,
    impact_tx_hash_normalise,
    transaction_deposits,
    transaction_impact,
    transfers_cursor,
)

logger = logging.getLogger("backstage")

TRANSFERS_PER_PAGE = IMPACT_PAGE_SIZE

# The CSV's columns, in order; a line fills the ones its section has.
COLUMNS = (
    "section",
    "hop",
    "direction",
    "block",
    "transaction",
    "log_index",
    "kind",
    "from",
    "to",
    "address",
    "amount_ntzs",
    "amount_units",
    "balance_ntzs",
    "frozen",
    "blacklisted",
    "customer",
    "deposit",
    "status",
    "amount_tzs",
    "created_at",
    "note",
)
# The page's lists, top to bottom (templates/backstage/impacted.html): the CSV follows it.
SECTION_ORDER = {
    "address": ("note", "state", "wallet", "deposit", "transfer"),
    "tx": ("note", "transaction", "onward", "address", "deposit"),
}
# Cells a person or a customer typed (a name, an e-mail): a spreadsheet must not run them.
FREE_TEXT = ("customer", "note")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def impacted_page_allowed(user) -> bool:
    """Compliance officers and super admins (DESIGN §9: incident record and report)."""
    return user.is_authenticated and user_has_role(user, PLATFORM_COMPLIANCE, SUPER_ADMIN)


# --- The lookup ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImpactedQuery:
    kind: str = ""  # "address", "tx" or "" (nothing asked yet)
    value: str = ""  # normalised: EIP-55 address or lowercase hash
    hops: int = ONWARD_HOPS_DEFAULT
    before: TransferPosition | None = None
    error: str = ""
    typed: str = ""  # what the person typed, to show it again

    def params(self, **changes) -> str:
        """This query as a query string (the CSV link, the next page)."""
        values = {"address": self.value} if self.kind == "address" else {"tx": self.value}
        if self.kind == "tx":
            values["hops"] = str(self.hops)
        before = changes.get("before", self.before)
        if self.kind == "address" and before is not None:
            values["before"] = before.token
        return urlencode(values)


def impacted_query(params) -> ImpactedQuery:
    """Reads ``address``, ``tx`` or ``q`` (either, told apart by length), ``hops`` and
    ``before`` from a GET; an unusable value gives the query its error sentence."""
    hops_text = (params.get("hops") or "").strip()
    hops = int(hops_text) if hops_text.isdigit() else ONWARD_HOPS_DEFAULT
    hops = max(1, min(hops, ONWARD_HOPS_MAX))
    before = TransferPosition.parse(params.get("before"))
    typed = (params.get("address") or params.get("tx") or params.get("q") or "").strip()
    if not typed:
        return ImpactedQuery(hops=hops)
    if params.get("address"):
        kind = "address"
    elif params.get("tx"):
        kind = "tx"
    else:
        kind = "tx" if len(typed) > 42 else "address"
    try:
        if kind == "address":
            value = impact_address_normalise(typed)
        else:
            value = impact_tx_hash_normalise(typed)
    except ImpactQueryError as exc:
        return ImpactedQuery(kind="", hops=hops, error=str(exc), typed=typed[:80])
    return ImpactedQuery(kind=kind, value=value, hops=hops, before=before, typed=value)


@dataclass
class ImpactedLine:
    """One row of the screen and of the CSV: its section and its cells (text, as shown)."""

    section: str
    cells: dict[str, str]
    deposit_id: str = ""  # for the link to the deposit's page
    explorer: str = ""  # the transaction on the block explorer, when the chain has one

    def row(self) -> list[str]:
        return [self.section, *(self.cells.get(column, "") for column in COLUMNS[1:])]


@dataclass
class ImpactedResult:
    query: ImpactedQuery
    lines: list[ImpactedLine] = field(default_factory=list)
    older: TransferPosition | None = None  # the address's next page of transfers
    not_found: str = ""

    def section(self, name: str) -> list[ImpactedLine]:
        return [line for line in self.lines if line.section == name]

    # The template reads these by name.
    @property
    def state(self):
        return self.section("state")

    @property
    def transfers(self):
        return self.section("transfer")

    @property
    def tx_transfers(self):
        return self.section("transaction")

    @property
    def onward(self):
        return self.section("onward")

    @property
    def addresses(self):
        return self.section("address")

    @property
    def wallets(self):
        return self.section("wallet")

    @property
    def deposits(self):
        return self.section("deposit")

    @property
    def notes(self):
        return self.section("note")


def _yes_no(value: bool | None) -> str:
    if value is None:
        return ""
    return _("yes") if value else _("no")


def _transfer_cells(row, **extra) -> dict[str, str]:
    units = int(row.amount_units)
    return {
        "block": str(row.block_number),
        "transaction": row.tx_hash,
        "log_index": str(row.log_index),
        "kind": row.kind,
        "from": row.from_address,
        "to": row.to_address,
        "amount_ntzs": units_as_ntzs(units),
        "amount_units": str(units),
        **extra,
    }


def _transfer_line(section: str, row, **extra) -> ImpactedLine:
    return ImpactedLine(
        section=section,
        cells=_transfer_cells(row, **extra),
        explorer=tx_explorer_url(row.tx_hash),
    )


def _state_cells(state: ChainState | None) -> dict[str, str]:
    if state is None:
        return {
            "note": _(
                "Not read: a page reads the live state of at most %(n)s addresses; look this "
                "address up on its own."
            )
            % {"n": STATE_READS_MAX}
        }
    if state.unavailable:
        return {"note": state.unavailable}
    return {
        "balance_ntzs": units_as_ntzs(state.balance_units),
        "frozen": _yes_no(state.frozen),
        "blacklisted": _yes_no(state.blacklisted),
    }


def _customer(user) -> str:
    name = (getattr(user, "full_name", "") or "").strip()
    return f"{name} <{user.email}>" if name else user.email


def _deposit_line(deposit) -> ImpactedLine:
    return ImpactedLine(
        section="deposit",
        cells={
            "deposit": str(deposit.pk),
            "address": deposit.wallet.address,
            "status": deposit.status,
            "amount_tzs": str(deposit.amount_tzs),
            "customer": _customer(deposit.user),
            "created_at": site_time_format(deposit.created_at, "seconds"),
            "transaction": deposit.mint_tx_hash,
        },
        deposit_id=str(deposit.pk),
        explorer=tx_explorer_url(deposit.mint_tx_hash),
    )


def _note(text: str) -> ImpactedLine:
    return ImpactedLine(section="note", cells={"note": text})


def _address_lines(query: ImpactedQuery, result: ImpactedResult) -> None:
    address = query.value
    state = address_chain_states([address]).get(address)
    result.lines.append(
        ImpactedLine(section="state", cells={"address": address, **_state_cells(state)})
    )
    links = address_links(address=address)
    for wallet in links.wallets:
        result.lines.append(
            ImpactedLine(
                section="wallet",
                cells={
                    "address": wallet.address,
                    "customer": _customer(wallet.user),
                    "status": _("verified") if wallet.verified_at else _("not verified"),
                    "created_at": site_time_format(wallet.created_at, "seconds"),
                },
            )
        )
    result.lines.extend(_deposit_line(deposit) for deposit in links.deposits)
    if links.deposits_more:
        result.lines.append(
            _note(
                _("Only the newest %(n)s deposits to this address are listed.")
                % {"n": len(links.deposits)}
            )
        )
    page = address_transfers(address=address, before=query.before, limit=TRANSFERS_PER_PAGE)
    for row in page.rows:
        if row.from_address == row.to_address:
            direction = _("self")
        elif row.to_address == address:
            direction = _("in")
        else:
            direction = _("out")
        result.lines.append(_transfer_line("transfer", row, direction=direction))
    result.older = page.older
    if page.older is not None:
        result.lines.append(
            _note(
                _(
                    "Older transfers exist: this page ends at block %(block)s, log %(log)s; "
                    "the next page lists them."
                )
                % {"block": page.older.block_number, "log": page.older.log_index}
            )
        )


def _transaction_lines(query: ImpactedQuery, result: ImpactedResult) -> None:
    impact = transaction_impact(tx_hash=query.value, hops=query.hops)
    if not impact.transfers:
        cursor = transfers_cursor()
        where = (
            _("indexed up to block %(block)s") % {"block": cursor.block_number}
            if cursor
            else _("nothing indexed yet")
        )
        result.not_found = _(
            "The indexer holds no token transfer of transaction %(tx)s (%(where)s): it moved "
            "no nTZS, or its block is not indexed yet."
        ) % {"tx": query.value, "where": where}
        return
    result.lines.extend(_transfer_line("transaction", row, hop="0") for row in impact.transfers)
    for hop in impact.hops:
        result.lines.extend(_transfer_line("onward", row, hop=str(hop.number)) for row in hop.rows)
        if hop.capped:
            result.lines.append(
                _note(
                    _(
                        "Hop %(hop)s shows only the earliest %(n)s transfers out of its "
                        "%(count)s addresses; the next hop follows only those shown. Look the "
                        "busy addresses up on their own."
                    )
                    % {"hop": hop.number, "n": ONWARD_ROWS_PER_HOP, "count": len(hop.followed)}
                )
            )
    states = address_chain_states(impact.addresses)
    customers = address_customers(impact.addresses)
    for address in impact.addresses:
        wallet = customers.get(address)
        result.lines.append(
            ImpactedLine(
                section="address",
                cells={
                    "address": address,
                    **_state_cells(states.get(address)),
                    "customer": _customer(wallet.user) if wallet else "",
                },
            )
        )
    result.lines.extend(_deposit_line(d) for d in transaction_deposits(tx_hash=query.value))


def impacted_lookup(query: ImpactedQuery) -> ImpactedResult:
    """Everything the page shows for a query, as lines (the screen and the CSV use this)."""
    result = ImpactedResult(query=query)
    if query.kind == "address":
        _address_lines(query, result)
    elif query.kind == "tx":
        _transaction_lines(query, result)
    # The screen's order, so the CSV reads top to bottom like the page (stable within a list).
    order = SECTION_ORDER.get(query.kind, ())
    result.lines.sort(key=lambda line: order.index(line.section))
    return result


# --- Pages --------------------------------------------------------------------------------------


def _allowed(request) -> None:
    if not impacted_page_allowed(request.user):
        raise PermissionDenied


def impacted_page(request, *, site):
    _allowed(request)
    query = impacted_query(request.GET)
    result = impacted_lookup(query)
    context = {
        **site.each_context(request),
        "title": _("Impacted addresses"),
        "query": query,
        "result": result,
        "hops_choices": range(1, ONWARD_HOPS_MAX + 1),
        "query_string": query.params() if query.kind else "",
        "older_string": query.params(before=result.older) if result.older else "",
        "first_string": query.params(before=None) if query.before else "",
    }
    return TemplateResponse(request, "backstage/impacted.html", context)


def csv_cell(value: str, column: str) -> str:
    """A cell a spreadsheet shows as text: free text starting like a formula is quoted."""
    if column in FREE_TEXT and value.startswith(FORMULA_START):
        return "'" + value
    return value


def impacted_csv_text(result: ImpactedResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for line in result.lines:
        writer.writerow([csv_cell(v, c) for v, c in zip(line.row(), COLUMNS, strict=True)])
    return out.getvalue()


def impacted_csv(request, *, site):
    """The screen's rows as CSV: the same query, the same lookup, the same lines."""
    _allowed(request)
    query = impacted_query(request.GET)
    result = impacted_lookup(query)
    logger.info(
        "impacted addresses exported by %s: %s %s (%d lines)",
        request.user.email,
        query.kind or "-",
        query.value or "-",
        len(result.lines),
    )
    response = HttpResponse(impacted_csv_text(result), content_type="text/csv; charset=utf-8")
    name = f"impacted-{query.kind or 'none'}-{(query.value or 'none')[:12]}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def impacted_urls(site) -> list:
    return [
        path(
            "impacted/",
            site.admin_view(partial(impacted_page, site=site)),
            name="impacted",
        ),
        path(
            "impacted/csv/",
            site.admin_view(partial(impacted_csv, site=site)),
            name="impacted_csv",
        ),
    ]
