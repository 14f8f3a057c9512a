"""The program page's rules fields, as a marketer uses them: what the page shows posts back
to the same rules, a change in one field keeps what the fields do not show, errors land
next to their field; and each program's join link, QR code and flyer are one click away."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import factories
import pytest
from test_admin_support import make_shop, post, sign_in
from test_rules_forms import FULL

from walletpass.loyalty.models import Program, Reward
from walletpass.loyalty.rules import validate_rules
from walletpass.passes.models import Pass


class _Form(HTMLParser):
    """The values a browser would post for one form of a page (no script run)."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.values = form_id, False, {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside or not a.get("name"):
            if tag == "option" and self._select and "selected" in a:
                self.values[self._select] = a.get("value", "")
            return
        name = a["name"]
        if tag == "input" and a.get("type") == "checkbox":
            if "checked" in a:
                self.values[name] = a.get("value") or "on"
        elif tag == "input" and a.get("type") != "file":
            self.values[name] = a.get("value", "")
        elif tag == "select":
            self._select = name
            self.values.setdefault(name, "")
        elif tag == "textarea":
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        if tag == "select":
            self._select = None
        if tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data


def form_values(html: str, form_id: str = "program-form") -> dict[str, str]:
    parser = _Form(form_id)
    parser.feed(html)
    return parser.values


def stored(runtime, shop) -> Program:  # type: ignore[no-untyped-def]
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        s.expunge(program)
        return program


@pytest.mark.parametrize("kind", sorted(FULL))
def test_the_page_posts_every_kinds_rules_back_unchanged(client, runtime, kind: str) -> None:  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, kind, rules=FULL[kind])
    before = stored(runtime, shop)
    sign_in(client, shop.emails["marketer"])
    page = client.get(f"/admin/programs/{shop.program_id}").get_data(as_text=True)
    values = form_values(page)
    assert "rules" in values
    assert 'name="rules.' in page, "no rules fields shown"
    r = post(client, f"/admin/programs/{shop.program_id}", values)
    assert r.status_code == 302, r.get_data(as_text=True)
    after = stored(runtime, shop)
    assert after.rules == validate_rules(kind, FULL[kind]).model_dump(mode="json")
    assert after.rules == validate_rules(kind, before.rules).model_dump(mode="json")


def test_a_field_change_keeps_the_rules_the_fields_do_not_show(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "points", rules=FULL["points"])
    with runtime.transaction(shop.merchant_id) as s:
        program = s.get(Program, shop.program_id)
        pass_id = factories.member_pass(s, settings, factories.member(s, program)).id
    sign_in(client, shop.emails["owner"])
    page = client.get(f"/admin/programs/{shop.program_id}").get_data(as_text=True)
    values = form_values(page)
    # The promotions are in the advanced JSON, the rest in fields.
    assert '"multipliers"' in values["rules"]
    assert values["rules.amount_per_point"] == "2.50"
    assert values["rules.expiry.mode"] == "lots"
    r = post(
        client, f"/admin/programs/{shop.program_id}", {**values, "rules.amount_per_point": "5"}
    )
    assert r.status_code == 302
    rules = stored(runtime, shop).rules
    assert rules["amount_per_point"] == "5"
    assert (
        rules["multipliers"]
        == validate_rules("points", FULL["points"]).model_dump(mode="json")["multipliers"]
    )
    assert rules["bonuses"]["referral"] == {"referrer": 30, "referee": 15}
    with runtime.transaction(shop.merchant_id) as s:
        assert s.get(Pass, pass_id).version == 2  # the card shows the new earning rate


def test_rule_errors_are_shown_next_to_their_fields_and_nothing_is_saved(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "tiers", rules=FULL["tiers"])
    before = stored(runtime, shop).rules
    sign_in(client, shop.emails["marketer"])
    values = form_values(client.get(f"/admin/programs/{shop.program_id}").get_data(as_text=True))
    values.update(
        {
            "rules.bonuses.welcome": "-1",
            "rules.levels.3.name": "Platinum",  # the spare row, filled in
            "rules.levels.3.min_spend": "1000",  # below Gold's 1500
            "rules.expiry.warn_days": "abc",
        }
    )
    r = post(client, f"/admin/programs/{shop.program_id}", values)
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    for field, message in (
        ("rules.bonuses.welcome", "Must be at least 0."),
        ("rules.levels.3.min_spend", "Must be more than the previous tier&#39;s spend (1500"),
        ("rules.expiry.warn_days", "Enter a whole number."),
    ):
        input_id = field.replace(".", "-")
        # The message follows its own input, not a list at the top of the form only.
        found = re.search(
            rf'id="{input_id}"[^>]*>\s*(?:<p class="wpa-hint"[^<]*</p>\s*)?'
            rf'<p class="wp-error" data-field="{re.escape(field)}">{re.escape(message)}',
            body,
        )
        assert found, (field, re.findall(r"data-field=\"[^\"]*\">[^<]*", body))
    # What was typed is shown again, the added row included.
    assert 'value="Platinum"' in body
    assert stored(runtime, shop).rules == before


def test_a_reward_added_in_the_blank_row_reaches_the_catalogue(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "stamps", rules={"goal": 8, "reward_name": "Free coffee"})
    sign_in(client, shop.emails["marketer"])
    values = form_values(client.get(f"/admin/programs/{shop.program_id}").get_data(as_text=True))
    assert values["rules.intermediate_rewards.0.at"] == ""  # the blank row
    values.update(
        {"rules.intermediate_rewards.0.at": "4", "rules.intermediate_rewards.0.name": "Cookie"}
    )
    assert post(client, f"/admin/programs/{shop.program_id}", values).status_code == 302
    assert stored(runtime, shop).rules["intermediate_rewards"] == [{"at": 4, "name": "Cookie"}]
    with runtime.transaction(shop.merchant_id) as s:
        card = {
            r.card_stamps: (r.name, r.active)
            for r in s.query(Reward).filter(Reward.program_id == shop.program_id)
        }
    assert card == {8: ("Free coffee", True), 4: ("Cookie", True)}
    # The catalogue page lists it, as the stamp card's own (changed in the rules).
    page = client.get(f"/admin/rewards?program_id={shop.program_id}").get_data(as_text=True)
    assert "Cookie" in page
    assert "Set in the stamp card's rules" in page


def test_a_new_program_starts_from_its_kinds_fields(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime)
    sign_in(client, shop.emails["marketer"])
    page = client.get("/admin/programs/new?kind=stamps").get_data(as_text=True)
    values = form_values(page)
    assert values["kind"] == "stamps"
    assert values["rules.goal"] == "10"
    assert "rules.amount_per_point" not in values
    values.update(name="Stamp Club", slug="stamp-club", **{"rules.goal": "6"})
    assert post(client, "/admin/programs/new", values).status_code == 302
    with runtime.transaction(shop.merchant_id) as s:
        created = s.query(Program).filter(Program.slug == "stamp-club").one()
        assert created.rules["goal"] == 6
        assert created.rules["reward_name"] == "Free coffee"
    # Switching the kind of a program without members asks for the new kind's rules.
    values = form_values(client.get(f"/admin/programs/{created.id}").get_data(as_text=True))
    r = post(client, f"/admin/programs/{created.id}", {**values, "kind": "points"})
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert 'data-field="rules.amount_per_point">This field is required.' in body
    assert 'id="rules-amount_per_point"' in body


def test_join_link_qr_code_and_flyer_are_one_click_away(client, runtime, settings):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "points", slug="bean-club")
    sign_in(client, shop.emails["marketer"])
    listing = client.get("/admin/programs").get_data(as_text=True)
    link = settings.public_url.rstrip("/") + "/join/bean-club"
    assert f'href="{link}"' in listing
    assert 'href="/join/bean-club/qr.svg"' in listing
    assert 'href="/join/bean-club/flyer"' in listing
    page = client.get(f"/admin/programs/{shop.program_id}").get_data(as_text=True)
    # A read-only field holding the whole link, to select and copy.
    assert re.search(
        rf'<input id="join-link-{shop.program_id}" value="{re.escape(link)}" readonly>', page
    )
    assert 'href="/join/bean-club/qr.svg"' in page
    assert 'href="/join/bean-club/flyer"' in page
    qr = client.get("/join/bean-club/qr.svg")
    assert qr.status_code == 200
    assert qr.mimetype == "image/svg+xml"
    assert client.get("/join/bean-club/flyer").status_code == 200


def test_a_tier_list_left_empty_says_so_under_the_tiers(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "tiers", rules=FULL["tiers"])
    sign_in(client, shop.emails["marketer"])
    values = form_values(client.get(f"/admin/programs/{shop.program_id}").get_data(as_text=True))
    for name in [n for n in values if n.startswith("rules.levels.")]:
        values[name] = ""
    r = post(client, f"/admin/programs/{shop.program_id}", values)
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    table_end = body.index("</table></div>", body.index('id="rules-levels-0-name"'))
    error = body.index('<p class="wp-error" data-field="rules.levels">')
    assert 0 < error - table_end < 80  # right under the table, not in the JSON area


def test_a_greek_marketer_reads_the_rules_errors_in_greek(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "stamps", rules={"goal": 8, "reward_name": "Free coffee"})
    sign_in(client, shop.emails["marketer"])
    page = client.get(f"/admin/programs/{shop.program_id}?lang=el").get_data(as_text=True)
    assert '<html lang="el">' in page
    assert "Σφραγίδες για γεμάτη κάρτα" in page  # noqa: RUF001 - the goal's label, in Greek
    values = form_values(page)
    values.update({"rules.bonuses.welcome": "9", "rules.stamps_per_visit": "x"})
    r = post(client, f"/admin/programs/{shop.program_id}", values)
    assert r.status_code == 422
    body = r.get_data(as_text=True)
    assert (
        '<p class="wp-error" data-field="rules.bonuses.welcome">'
        "Πρέπει να είναι λιγότερες από τις σφραγίδες για γεμάτη κάρτα (8).</p>"  # noqa: RUF001
    ) in body
    assert (
        '<p class="wp-error" data-field="rules.stamps_per_visit">Εισαγάγετε ακέραιο αριθμό.</p>'
    ) in body


def test_a_taiwanese_browser_reads_the_programs_pages_in_traditional_chinese(client, runtime):  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, "stamps", rules={"goal": 8, "reward_name": "Free coffee"})
    sign_in(client, shop.emails["marketer"])
    taiwan = {"Accept-Language": "zh-TW,zh;q=0.9"}
    programs = client.get("/admin/programs", headers=taiwan).get_data(as_text=True)
    assert '<html lang="zh-Hant">' in programs
    assert "<h1>方案</h1>" in programs
    assert ">傳單</a>" in programs  # the flyer, one click away
    rewards = client.get("/admin/rewards", headers=taiwan).get_data(as_text=True)
    assert "<h1>獎勵目錄</h1>" in rewards
    assert "集滿 8 個印花時" not in rewards  # the goal's reward costs the card's stamps
    assert "8 個印花" in rewards
    page = client.get(f"/admin/programs/{shop.program_id}", headers=taiwan).get_data(as_text=True)
    assert "集滿所需印花" in page
    assert "印花到期" in page
