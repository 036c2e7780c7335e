"""The import page in a real browser: top management uploads a companies file, checks
it (the refused rows with their row, column and reason, and the errors workbook), imports
the good rows of the same file without sending it again, and finds the companies in the
directory; a manager has no such page (screenshots in tests/artifacts/)."""

# ruff: noqa: RUF001

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from aggregates.company import with_check_digits
from tests.conftest import bearer, browser, browser_page, browser_sign_in, served_site
from tests.conftest import screenshot as shot

FIXTURES = (browser,)  # conftest's, for this module's tests

pytestmark = pytest.mark.browser

INN_A = with_check_digits("770708389")
INN_B = with_check_digits("500100732")
FILE = (
    "Название;ИНН;КПП;Отрасль;Город\n"
    f"ООО «Альфа»;{INN_A};770701001;Retail;Москва\n"
    "ООО «Бета»;7707083891;;Retail;Тверь\n"  # row 3: a wrong check digit
    f"ООО «Гамма»;{INN_B};;Logistics;Казань\n"
    f"Альфа-дубль;{INN_A};;Retail;Москва\n"  # row 5: the same tax id as row 2
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_site(tmp_path_factory.mktemp("imports")) as (platform, base):
        with httpx.Client(base_url=base) as api:
            for user, role in (("tanya.top", "top"), ("adam.admin", "admin"), ("boris", "manager")):
                body = {"username": user, "name": user, "role": role, "department": "sales"}
                made = api.post("/users", json=body, headers=bearer("adam.admin", "admin"))
                assert made.status_code == 201, made.text
                platform.credentials.set_password(user, f"{user}-password", set_by="test")
        yield base


def test_check_a_file_see_its_bad_rows_then_import_its_good_rows(
    browser: Any, site: str, tmp_path: Path
) -> None:
    upload = tmp_path / "clients.csv"
    upload.write_text(FILE, encoding="utf-8")
    page = browser_page(browser, site)
    browser_sign_in(page, "tanya.top", "tanya.top-password")
    page.click("header nav a[href='/workspace/imports']")
    form = page.locator("#form-import")
    form.locator("input[name=file]").set_input_files(str(upload))
    form.locator("select[name=kind]").select_option("companies")
    form.locator("#check").click()
    page.wait_for_selector("#import-report")
    assert page.get_attribute("#import-report", "data-status") == "dry_run"
    assert page.inner_text("[data-count=accepted]") == "2"
    assert page.inner_text("[data-count=refused]") == "2"
    bad = page.locator("#import-errors tbody tr")
    assert [bad.nth(i).get_attribute("data-row") for i in range(bad.count())] == ["3", "5"]
    assert "ИНН" in bad.nth(0).inner_text()
    assert "check digit" in bad.nth(0).inner_text()
    assert "the same record as row 2" in bad.nth(1).inner_text()
    shot(page, "imports-dry-run")

    with page.expect_download() as downloaded:
        page.click("#errors-workbook")
    saved = tmp_path / "errors.xlsx"
    downloaded.value.save_as(saved)
    sheet = openpyxl.load_workbook(saved).worksheets[0]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == [3, 5]
    assert "check digit" in str(rows[0][-2])

    # all or nothing refuses the file; the good rows, chosen explicitly, come in
    page.click("#import-kept")
    page.wait_for_selector("#import-report")
    assert page.get_attribute("#import-report", "data-status") == "rejected"
    page.locator("#form-kept select[name=mode]").select_option("rows")
    page.click("#import-kept")
    page.wait_for_selector("#import-report[data-status=imported]")
    assert page.inner_text("[data-count=imported]") == "2"
    shot(page, "imports-imported")

    page.goto("/workspace/companies")
    listed = page.inner_text("#companies")
    assert "ООО «Альфа»" in listed
    assert "ООО «Гамма»" in listed
    assert "Бета" not in listed
    page.context.close()


def test_the_page_speaks_russian_and_is_not_there_for_a_manager(browser: Any, site: str) -> None:
    page = browser_page(browser, site, locale="ru-RU")
    browser_sign_in(page, "adam.admin", "adam.admin-password")
    page.goto("/workspace/imports")
    assert page.inner_text("h1") == "Импорт существующей базы"
    assert "Компании" in page.inner_text("#form-import select[name=kind]")
    shot(page, "imports-ru")
    page.context.close()

    manager = browser_page(browser, site)
    browser_sign_in(manager, "boris", "boris-password")
    assert manager.locator("header nav a[href='/workspace/imports']").count() == 0
    answer = manager.goto("/workspace/imports")
    assert answer is not None
    assert answer.status == 403
    manager.context.close()
