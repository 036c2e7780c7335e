"""The kinds of record an import brings in, one module each (see leadledger.imports.base).

Adding a kind: copy ``deals.py`` (its fields, its key and record id, its run telling
which rows are in already and deciding a row through the aggregate) and name its
``KIND`` here.
"""

from __future__ import annotations

from leadledger.imports.base import Kind
from leadledger.imports.kinds import companies, contacts, deals, leads

KINDS: dict[str, Kind] = {
    k.name: k for k in (leads.KIND, deals.KIND, companies.KIND, contacts.KIND)
}
