"""Importing an existing base (issue 18 §2): files of leads, deals and companies (and,
next, contacts) checked row by row through the aggregates and written in one transaction.

- :mod:`leadledger.imports.files`: reading XLSX and CSV;
- :mod:`leadledger.imports.base`: fields, the column mapping, the kind protocol;
- :mod:`leadledger.imports.kinds`: one module per kind;
- :mod:`leadledger.imports.runner`: dry run, modes, idempotency, the bulk write;
- :mod:`leadledger.imports.report`: the refused rows as a workbook.
"""
