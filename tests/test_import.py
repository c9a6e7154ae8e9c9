"""`publish subscribers import/export` through the CLI: encodings, other tools' exports,
duplicates, unreadable files, resubscribing, and formula-safe export."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from tests.helpers import run_publish

JA_NAMES = ["山田花子", "佐藤太郎", "鈴木一郎", "高橋美咲", "田中健太", "伊藤さくら", "渡辺翔太",
            "中村あかり", "小林大輔", "加藤ひなた"]


def cli(root: Path, *args: str) -> tuple[int, str, str]:
    done = run_publish("subscribers", *args, cwd=root)
    return done.returncode, done.stdout, done.stderr


def listed(root: Path) -> dict[str, dict[str, str]]:
    code, out, err = cli(root, "list", "--json")
    assert code == 0, err
    return {row["email"]: row for row in json.loads(out)}


def test_mailchimp_export_in_utf8_with_bom(tmp_path: Path) -> None:
    (tmp_path / "mc.csv").write_bytes("\ufeffEmail Address,First Name,Last Name,MEMBER_RATING\n"
                                      "ann@example.com,Ann,Lee,2\nbo@example.com,Bo,,5\n"
                                      .encode("utf-8"))
    code, out, err = cli(tmp_path, "import", "mc.csv")
    assert code == 0, err
    assert out.startswith("added 2,")
    rows = listed(tmp_path)
    assert rows["ann@example.com"]["name"] == "Ann Lee" and rows["bo@example.com"]["name"] == "Bo"


def test_substack_export_in_utf16(tmp_path: Path) -> None:
    text = "email,active_subscription,name\nhanako@example.jp,true,山田花子\n"
    (tmp_path / "ss.csv").write_bytes(text.encode("utf-16"))  # with its BOM, as Excel saves
    code, _, err = cli(tmp_path, "import", "ss.csv")
    assert code == 0, err
    assert listed(tmp_path)["hanako@example.jp"]["name"] == "山田花子"


def test_shift_jis_from_japanese_excel_is_detected_or_named(tmp_path: Path) -> None:
    rows = "".join(f"reader{i}@example.jp,{name}\n" for i, name in enumerate(JA_NAMES))
    (tmp_path / "sjis.csv").write_bytes(("email,name\n" + rows).encode("cp932"))
    code, out, err = cli(tmp_path, "import", "sjis.csv")
    assert code == 0, err
    assert out.startswith("added 10,")
    assert listed(tmp_path)["reader0@example.jp"]["name"] == "山田花子"
    (tmp_path / "one.csv").write_bytes("email,name\nx@example.jp,髙橋①\n".encode("cp932"))
    code, _, err = cli(tmp_path, "import", "one.csv", "--encoding", "cp932")
    assert code == 0, err
    assert listed(tmp_path)["x@example.jp"]["name"] == "髙橋①"  # CP932-only characters


def test_kit_listmonk_and_buttondown_headers_and_statuses(tmp_path: Path) -> None:
    (tmp_path / "kit.csv").write_text("first_name,email_address,state\nAnn,ann@example.com,"
                                      "active\nCy,cy@example.com,cancelled\n", encoding="utf-8")
    (tmp_path / "listmonk.csv").write_text(
        'uuid,email,name,attributes,status\n1,lm@example.com,LM,"{}",blocklisted\n'
        '2,ok@example.com,OK,"{}",enabled\n', encoding="utf-8")
    (tmp_path / "bd.csv").write_text("email,subscriber_type,notes\nnew@example.com,unactivated,\n"
                                     "reg@example.com,regular,\n", encoding="utf-8")
    for name in ("kit.csv", "listmonk.csv", "bd.csv"):
        code, _, err = cli(tmp_path, "import", name)
        assert code == 0, err
    rows = listed(tmp_path)
    assert {e: r["status"] for e, r in rows.items()} == {
        "ann@example.com": "subscribed", "cy@example.com": "unsubscribed",
        "lm@example.com": "unsubscribed", "ok@example.com": "subscribed",
        "reg@example.com": "subscribed"}
    assert "bd.csv:2: status 'unactivated' has not opted in" in err


def test_map_names_the_columns(tmp_path: Path) -> None:
    (tmp_path / "own.csv").write_text("Mail,Who,Extra\nz@example.com,Zed,1\n", encoding="utf-8")
    code, _, err = cli(tmp_path, "import", "own.csv", "--map", "email=Mail,name=Who")
    assert code == 0, err
    assert listed(tmp_path)["z@example.com"]["name"] == "Zed"
    code, _, err = cli(tmp_path, "import", "own.csv", "--map", "email=Nope")
    assert code == 2 and err.count("\n") == 1 and "no column 'Nope'" in err
    code, _, err = cli(tmp_path, "import", "own.csv", "--map", "mail")
    assert code == 2 and "--map: cannot read 'mail'" in err


def test_duplicate_rows_are_reported_with_their_lines_never_merged(tmp_path: Path) -> None:
    (tmp_path / "dup.csv").write_text("email,name\na@example.com,First\nb@example.com,B\n"
                                      "A@EXAMPLE.com,Second\na@example.com,Third\n",
                                      encoding="utf-8")
    code, out, err = cli(tmp_path, "import", "dup.csv")
    assert code == 0
    assert "bad rows 2" in out
    assert "dup.csv:4: duplicate of line 2: not imported" in err
    assert "dup.csv:5: duplicate of line 2: not imported" in err
    assert listed(tmp_path)["a@example.com"]["name"] == "First"


@pytest.mark.parametrize("kind", ["missing", "folder", "fifo", "garbage", "bad-encoding"])
def test_an_unreadable_file_is_one_clear_line(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "list.csv"
    if kind == "folder":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "garbage":
        target.write_bytes(bytes(range(256)) * 40)
    elif kind == "bad-encoding":
        target.write_bytes("email\nx@example.com\n".encode("utf-16-le"))
    args = ("import", "list.csv") + (("--encoding", "utf-8") if kind == "bad-encoding" else ())
    code, _, err = cli(tmp_path, *args)
    assert code == 2, err
    assert err.count("\n") == 1 and "list.csv" in err and "internal error" not in err


def test_import_never_resubscribes_unless_told_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("email\nr@example.com\n", encoding="utf-8")
    assert cli(tmp_path, "import", "a.csv")[0] == 0
    assert cli(tmp_path, "remove", "r@example.com")[0] == 0
    code, out, _ = cli(tmp_path, "import", "a.csv")
    assert code == 0 and "kept opted-out 1" in out
    assert listed(tmp_path)["r@example.com"]["status"] == "unsubscribed"
    code, _, err = cli(tmp_path, "import", "a.csv", "--resubscribe")
    assert code == 0 and "resubscribed r@example.com" in err
    assert listed(tmp_path)["r@example.com"]["status"] == "subscribed"


def test_export_defuses_formulas_and_import_restores_them(tmp_path: Path) -> None:
    hostile = ["=HYPERLINK(\"http://x.example\")", "+1+2", "-3", "@SUM(A1)", "Plain"]
    with (tmp_path / "in.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "name"])
        writer.writerows([f"u{i}@example.com", name] for i, name in enumerate(hostile))
    assert cli(tmp_path, "import", "in.csv")[0] == 0
    assert cli(tmp_path, "export", "out.csv")[0] == 0
    with (tmp_path / "out.csv").open(encoding="utf-8", newline="") as handle:
        names = [row["name"] for row in csv.DictReader(handle)]
    assert names == ["'" + n for n in hostile[:4]] + ["Plain"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "out.csv").write_bytes((tmp_path / "out.csv").read_bytes())
    assert cli(other, "import", "out.csv")[0] == 0
    assert [listed(other)[f"u{i}@example.com"]["name"] for i in range(5)] == hostile


def test_many_bad_rows_are_all_reported_in_line_order(tmp_path: Path) -> None:
    rows = ["email"] + [f"r{i % 700}@example.com" if i % 5 else f"bad{i}@" for i in range(2500)]
    (tmp_path / "many.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = cli(tmp_path, "import", "many.csv")
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) == 2500 - 560 == int(out.split("bad rows ")[1])
    assert [int(line.split(":")[1]) for line in lines] == sorted(
        n for n in range(2, 2502) if n - 2 >= 700 or (n - 2) % 5 == 0)
    assert lines[0] == "many.csv:2: There must be something after the @-sign."
    assert "many.csv:703: duplicate of line 3: not imported" in lines  # across print blocks
    assert "many.csv:1234: duplicate of line 534: not imported" in lines  # not rich's :1234:
