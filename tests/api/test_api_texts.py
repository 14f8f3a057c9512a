"""Programs, rewards and offers take their texts in other languages through the API:
round trip, one language patched alone, refusals that change nothing, and only the
cards of a changed language's readers refreshed."""

# Greek capitals look like Latin ones, and these texts are Greek on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

from api_helpers import TIERS, make_shop, new_member, new_program
from sqlalchemy import select

from walletpass.passes.models import Pass


def _versions(runtime) -> dict[int, int]:  # type: ignore[no-untyped-def]
    with runtime.transaction() as s:
        return {p.member_id: p.version for p in s.scalars(select(Pass))}


def test_program_texts_round_trip_and_patch_one_language(client, runtime) -> None:  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, client)
    program = new_program(
        shop,
        "tiers",
        TIERS,
        name="Coffee Club",
        translations={"el-GR": {"name": "Λέσχη Καφέ"}, "zh-TW": {"name": "咖啡俱樂部"}},
    )
    # Regional tags are stored as our languages.
    assert program["translations"] == {
        "el": {"name": "Λέσχη Καφέ"},
        "zh-Hant": {"name": "咖啡俱樂部"},
    }
    assert shop.read.get(f"/programs/{program['id']}")["translations"] == program["translations"]

    greek = new_member(shop, program["id"], language="el")
    english = new_member(shop, program["id"], language="en")
    before = _versions(runtime)
    changed = shop.admin.patch(
        f"/programs/{program['id']}", {"translations": {"el": {"name": "Η Λέσχη του Καφέ"}}}
    )
    # The Greek name replaced; the Chinese one untouched.
    assert changed["translations"] == {
        "el": {"name": "Η Λέσχη του Καφέ"},
        "zh-Hant": {"name": "咖啡俱樂部"},
    }
    after = _versions(runtime)
    assert after[greek["id"]] > before[greek["id"]]
    assert after[english["id"]] == before[english["id"]]

    # The same PATCH again (a retry) changes no card.
    shop.admin.patch(
        f"/programs/{program['id']}", {"translations": {"el": {"name": "Η Λέσχη του Καφέ"}}}
    )
    assert _versions(runtime) == after

    # null removes a language's texts: back to the default.
    removed = shop.admin.patch(f"/programs/{program['id']}", {"translations": {"zh-Hant": None}})
    assert removed["translations"] == {"el": {"name": "Η Λέσχη του Καφέ"}}

    # Tier names ride in the rules, checked by them.
    rules = {
        **TIERS,
        "levels": [
            {"name": "Member", "min_spend": "0"},
            {"name": "Gold", "min_spend": "100", "names": {"el": "Χρυσό"}},
        ],
    }
    saved = shop.admin.patch(f"/programs/{program['id']}", {"rules": rules})
    assert saved["rules"]["levels"][1]["names"] == {"el": "Χρυσό"}
    assert "names" not in saved["rules"]["levels"][0]


def test_bad_texts_are_refused_and_change_nothing(client, runtime) -> None:  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, client)
    program = new_program(shop, "points", translations={"el": {"name": "Πόντοι"}})
    path = f"/programs/{program['id']}"
    cases = [
        ({"fr": {"name": "Club"}}, "body.translations"),
        ({"el": {"name": "Πόντοι", "colour": "red"}}, "body.translations.el.colour"),
        ({"el": {"name": "Π" * 201}}, "body.translations.el.name"),
        ({"el": {"name": ""}}, "body.translations.el.name"),
        ({"zh-TW": {"name": "甲"}, "zh-Hant": {"name": "乙"}}, "body.translations"),
        ({"en-XA": {"name": "pseudo"}}, "body.translations"),
    ]
    for texts, field in cases:
        refused = shop.admin.patch(path, {"translations": texts, "name": "Changed"}, expect=422)
        assert field in {e["field"] for e in refused["errors"]}, (texts, refused)
    # Nothing changed, not even the name sent beside the bad texts.
    kept = shop.read.get(path)
    assert (kept["name"], kept["translations"]) == (program["name"], {"el": {"name": "Πόντοι"}})
    shop.admin.post(
        "/programs",
        {"slug": "bad-texts", "name": "X", "kind": "points", "rules": {"amount_per_point": "1"},
         "translations": {"xx": {"name": "X"}}},
        expect=422,
    )  # fmt: skip
    assert shop.read.get("/programs", limit=200)["data"] == [kept]


def test_reward_and_offer_texts(client, runtime) -> None:  # type: ignore[no-untyped-def]
    shop = make_shop(runtime, client)
    program = new_program(shop, "points")
    reward = shop.admin.post(
        "/rewards",
        {"program_id": program["id"], "name": "Free coffee", "cost_points": 10,
         "translations": {"el": {"name": "Δωρεάν καφές"}}},
    )  # fmt: skip
    assert reward["translations"] == {"el": {"name": "Δωρεάν καφές"}}
    patched = shop.admin.patch(
        f"/rewards/{reward['id']}", {"translations": {"zh-Hans": {"name": "免费咖啡"}}}
    )
    assert patched["translations"] == {
        "el": {"name": "Δωρεάν καφές"},
        "zh-Hans": {"name": "免费咖啡"},
    }
    shop.admin.patch(
        f"/rewards/{reward['id']}", {"translations": {"el": {"title": "x"}}}, expect=422
    )

    offer = shop.admin.post(
        "/offers",
        {"slug": "half", "title": "Half price", "terms": "Once a day",
         "discount": {"type": "percent", "value": 50},
         "translations": {"el": {"title": "Μισή τιμή", "terms": "Μία φορά τη μέρα"}}},
    )  # fmt: skip
    assert offer["translations"] == {"el": {"title": "Μισή τιμή", "terms": "Μία φορά τη μέρα"}}
    # A language's texts are replaced whole: the terms not given fall back to the default.
    patched = shop.admin.patch(
        f"/offers/{offer['id']}",
        {"translations": {"el": {"title": "Μισή τιμή!", "description": ""}}},
    )
    assert patched["translations"] == {"el": {"title": "Μισή τιμή!"}}
    assert shop.read.get(f"/offers/{offer['id']}")["translations"] == patched["translations"]
    shop.admin.patch(
        f"/offers/{offer['id']}", {"translations": {"el": {"title": "T" * 201}}}, expect=422
    )
    assert shop.read.get(f"/offers/{offer['id']}")["translations"] == patched["translations"]


def test_the_openapi_document_describes_translations(client, runtime) -> None:  # type: ignore[no-untyped-def]
    spec = client.get("/api/v1/openapi.json").json
    schemas = spec["components"]["schemas"]
    for name in ("ProgramIn", "ProgramPatch", "ProgramOut", "RewardIn", "OfferIn", "OfferPatch"):
        assert "translations" in schemas[name]["properties"], name
    assert "OfferTexts" in schemas
    assert set(schemas["OfferTexts"]["properties"]) == {"title", "description", "terms"}
