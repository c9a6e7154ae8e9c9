"""The `publish` command as an editor uses it: real subprocesses, real files, real SQLite."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from tests.helpers import REPO, run_publish, table_rows
from tests.helpers import sample_posts as samples

JA_POST = "posts/chuo-line-extension.md"
EN_POST = "posts/city-composting.md"


def sample_posts() -> list[str]:
    """The reviewed sample posts, as an editor names them on the command line."""
    return [f"posts/{p.name}" for p in samples.sample_posts()]


def test_the_readme_starts_with_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = readme.split("```sh\n")[1:3]
    first, second = (b.split("\n```")[0] for b in blocks)
    assert "pip install ." in first and "publish posts/" in first
    post = first.rsplit("publish ", 1)[1].strip()
    assert (REPO / post).is_file()
    ci = (REPO / ".ci/run").read_text(encoding="utf-8")
    assert second in ci.splitlines()


@pytest.mark.parametrize("post", sample_posts())
def test_every_sample_post_publishes_to_the_outbox_then_nothing_twice(
    workdir: Path, post: str
) -> None:
    first = run_publish(post, cwd=workdir)
    assert first.returncode == 0, first.stderr
    first_rows = table_rows(first.stdout)
    assert first_rows and all(re.fullmatch(r"\d+ new", s) for s in first_rows.values()), first_rows
    assert "Nothing new" not in first.stdout
    slug_dir = next((workdir / "outbox").iterdir())
    for name in ("edition.json", "newsletter.html", "newsletter.txt", "newsletter.eml",
                 "faq.md", "faq.jsonld"):
        assert (slug_dir / name).is_file(), name
    assert list((slug_dir / "social").glob("x-*.txt"))
    eml_before = (slug_dir / "newsletter.eml").read_bytes()

    second = run_publish(post, cwd=workdir)
    assert second.returncode == 0, second.stderr
    second_rows = table_rows(second.stdout)
    assert second_rows.keys() == first_rows.keys()
    assert all(re.fullmatch(r"\d+ already sent", s) for s in second_rows.values()), second_rows
    assert "Nothing new to send" in second.stdout
    assert (slug_dir / "newsletter.eml").read_bytes() == eml_before


def test_json_prints_the_documented_contract(workdir: Path) -> None:
    result = run_publish(JA_POST, "--json", "--dry-run", cwd=workdir)
    assert result.returncode == 0, result.stderr
    edition = json.loads(result.stdout)
    assert set(edition["article"]) >= {"title", "author", "date", "lang", "url", "slug", "tags"}
    assert set(edition["newsletter"]) >= {"subject", "preheader", "html", "text"}
    assert edition["article"]["lang"] == "ja"
    for network in ("x", "bluesky", "mastodon"):
        assert edition["social"][network], network
        for post in edition["social"][network]:
            assert {"text", "length", "limit"} <= set(post)
            assert 0 < post["length"] <= post["limit"]
    assert all("facets" in p for p in edition["social"]["bluesky"])
    faq = edition["faq"]
    assert len(faq["items"]) == 10
    assert {"question", "answer"} <= set(faq["items"][0])
    assert faq["jsonld"]["@type"] == "FAQPage"
    assert faq["markdown"].strip()


def test_dry_run_writes_nothing(workdir: Path) -> None:
    result = run_publish(EN_POST, "--dry-run", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stdout
    assert not (workdir / "outbox").exists()
    assert not (workdir / ".publisher").exists()


def test_out_chooses_the_outbox_folder(workdir: Path) -> None:
    result = run_publish(EN_POST, "--out", "elsewhere", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert (workdir / "elsewhere").is_dir() and not (workdir / "outbox").exists()


def test_a_changed_article_is_refused_without_resend(workdir: Path) -> None:
    assert run_publish(EN_POST, cwd=workdir).returncode == 0
    post = workdir / EN_POST
    post.write_text(post.read_text(encoding="utf-8") + "\nOne more paragraph.\n", encoding="utf-8")
    refused = run_publish(EN_POST, cwd=workdir)
    assert refused.returncode == 5
    assert "--resend" in refused.stderr and "Traceback" not in refused.stderr
    assert run_publish(EN_POST, "--resend", cwd=workdir).returncode == 0


BAD_INPUTS = {
    "missing": (None, "not found"),
    "not-utf8": (b"---\ntitle: x\n---\n\xff\xfe body\n", "UTF-8"),
    "broken-yaml": (b"---\ntitle: [unclosed\nauthor: x\n---\nbody\n", "line"),
    "no-title": (b"---\nauthor: someone\n---\nBody text.\n", "title"),
    "empty-body": (b"---\ntitle: Hello\n---\n\n", "body"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_exit_2(workdir: Path, case: str) -> None:
    content, expected = BAD_INPUTS[case]
    path = workdir / "posts" / f"{case}.md"
    if content is not None:
        path.write_bytes(content)
    result = run_publish(path.relative_to(workdir), cwd=workdir)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"{case}.md" in lines[0] and expected.lower() in lines[0].lower()
    assert "Traceback" not in result.stderr
    assert not (workdir / "outbox").exists() and not (workdir / ".publisher").exists()


def test_a_directory_instead_of_a_file(workdir: Path) -> None:
    result = run_publish("posts", cwd=workdir)
    assert result.returncode == 2
    assert "posts" in result.stderr and "directory" in result.stderr.lower()


def test_debug_shows_the_traceback(workdir: Path) -> None:
    result = run_publish("posts/missing.md", "--debug", cwd=workdir)
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_hostile_article_never_leaks_code(workdir: Path) -> None:
    post = workdir / "posts" / "hostile.md"
    post.write_text(
        "---\ntitle: 'Hostile {{ 7*7 }}'\nurl: https://example.com/h\n---\n"
        "Lead {{ 7*7 }} <script>alert(1)</script> <img src=x onerror=alert(2)>\n\n"
        "[click](javascript:alert(3)) [data](data:text/html;base64,AAAA)\n\n"
        "## FAQ\n\n### Is it safe?\n\nYes <iframe src=https://evil.example></iframe>.\n",
        encoding="utf-8",
    )
    result = run_publish("posts/hostile.md", "--json", "--dry-run", cwd=workdir)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for needle in ("<script", "onerror", "javascript:", "data:text/html", "<iframe"):
        assert needle not in out, needle
    edition = json.loads(out)
    assert "{{ 7*7 }}" in edition["newsletter"]["html"]
    assert "49" not in edition["article"]["title"]


def test_measure_counts_like_each_network() -> None:
    japanese = "日本語のテキスト"
    result = run_publish("measure", "--network", "x", japanese, "--json", cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "network": "x", "length": 16, "limit": 280, "fits": True,
        "unit": json.loads(result.stdout)["unit"],
    }
    bluesky = run_publish("measure", "-n", "bluesky", japanese, cwd=REPO)
    assert "8/300" in bluesky.stdout
    too_long = run_publish("measure", "--network", "x", "あ" * 141, cwd=REPO)
    assert too_long.returncode == 2


def test_measure_refuses_text_that_is_not_utf8_in_one_line() -> None:
    # bytes that are not UTF-8 reach Python as lone surrogates (surrogateescape)
    result = run_publish("measure", "-n", "bluesky", "caf\udce9", cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.startswith("error: text:") and "lone surrogate" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_a_damaged_page_in_the_ledger_is_one_line_and_exit_3(workdir: Path) -> None:
    assert run_publish(EN_POST, cwd=workdir).returncode == 0
    ledger = workdir / ".publisher" / "ledger.sqlite3"
    data = bytearray(ledger.read_bytes())
    data[4096 + 8 : 4096 + 200] = b"\xa5" * 192  # page 2: the deliveries table's root
    ledger.write_bytes(bytes(data))
    for args in ((EN_POST,), ("status", EN_POST)):
        result = run_publish(*args, cwd=workdir)
        assert result.returncode == 3, result.stderr
        assert "damaged (database disk image is malformed)" in result.stderr
        errors = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
        assert "internal error" not in result.stderr and len(errors) == 1, result.stderr


def test_status_reports_channels_after_a_run(workdir: Path) -> None:
    assert run_publish(EN_POST, cwd=workdir).returncode == 0
    result = run_publish("status", EN_POST, "--json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    outbox = next(c for c in status["channels"] if c["channel"] == "outbox")
    assert outbox["sent"] >= 4 and outbox["pending"] == 0


def test_help_lists_subcommands() -> None:
    result = run_publish("--help", cwd=REPO)
    assert result.returncode == 0
    listed = result.stdout.split("\nCommands:\n", 1)[1].splitlines()
    commands = {line.split()[0] for line in listed if line.startswith("  ")}
    assert commands >= {"run", "measure", "status", "retract", "check", "preview", "lint",
                        "digest", "serve", "subscribers", "keys"}


def test_faq_social_posts_are_optional_outputs(workdir: Path) -> None:
    plain = json.loads(run_publish(JA_POST, "--json", "--dry-run", cwd=workdir).stdout)
    assert "x-faq" not in plain["social"]
    (workdir / "publisher.toml").write_text("[faq]\nsocial_posts = true\n", encoding="utf-8")
    result = run_publish(JA_POST, "--json", "--dry-run", cwd=workdir)
    assert result.returncode == 0, result.stderr
    social = json.loads(result.stdout)["social"]
    assert len(social["x-faq"]) == 10 and social["bluesky-faq"][0]["facets"]
    first = social["x-faq"][0]["text"]
    assert first.startswith("Q.") and "https://example.com/posts/chuo-line-extension" in first
    assert all(p["length"] <= p["limit"] for posts in social.values() for p in posts)


def test_brackets_in_titles_and_errors_are_text_not_markup(workdir: Path) -> None:
    post = workdir / "posts" / "bracket.md"
    post.write_text("---\ntitle: '[速報] New [/b] line'\n---\nBody.\n", encoding="utf-8")
    result = run_publish("posts/bracket.md", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "[速報] New [/b] line" in result.stdout
    bad = workdir / "posts" / "[bold]x.md"
    bad.write_text("---\nauthor: a\n---\nBody.\n", encoding="utf-8")
    refused = run_publish("posts/[bold]x.md", cwd=workdir)
    assert refused.returncode == 2 and "[bold]x.md" in refused.stderr


def test_a_mistyped_channel_key_is_one_line_naming_the_file_the_key_and_the_fix(
    workdir: Path
) -> None:
    from tests.helpers.e2e import write_config

    config = write_config(workdir, networks=["mastodon"], channels={
        "mastodon": {"instance_url": "https://mastodon.example", "timeuot": 5}})
    result = run_publish("check", cwd=workdir, env={"MASTODON_ACCESS_TOKEN": "token-1"})
    assert result.returncode == 3
    [line] = result.stderr.strip().splitlines()
    where, problem_and_fix = line.split(": ", 1)[1].split(": ", 1)
    assert where == f"{config} [channels.mastodon]"
    problem, fix = problem_and_fix.split(" — ")
    assert problem == "unknown key 'timeuot'" and fix.startswith("use one of: ")
    assert "timeout" in fix


def test_the_summary_counts_one_faq_question_in_the_singular(workdir: Path) -> None:
    post = workdir / "posts" / "one-question.md"
    post.write_text("---\ntitle: 朝市のお知らせ\n---\n朝市が開かれます。\n\n## よくある質問\n\n"
                    "### 雨でも開かれますか？\n\n小雨なら開かれます。\n", encoding="utf-8")
    result = run_publish("posts/one-question.md", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert table_rows(result.stdout)["faq digest"] == "1 new"
    assert "│ 1 question " in result.stdout


def test_a_server_down_at_preflight_says_nothing_was_sent(workdir: Path) -> None:
    _bluesky_on_a_closed_port(workdir)
    result = run_publish(EN_POST, cwd=workdir, env={"BLUESKY_APP_PASSWORD": "app-pass-word-1234"})
    assert result.returncode == 4
    assert result.stderr.strip().splitlines() == [
        "error: bluesky: POST /xrpc/com.atproto.server.createSession: connection failed, before"
        " anything was sent — check that the server is up and its base URL in publisher.toml,"
        " then run the same command again"]
    assert not (workdir / "outbox").exists()
    status = run_publish("status", EN_POST, cwd=workdir)
    assert "nothing delivered yet" in status.stdout


def test_a_dry_run_refuses_a_channel_table_the_real_run_would_refuse(workdir: Path) -> None:
    (workdir / "publisher.toml").write_text(
        '[social]\nnetworks = ["mastodon"]\n\n[channels.mastodon]\n'
        'instance_url = "https://mastodon.example"\ntimeuot = 10\n', encoding="utf-8")
    dry = run_publish(EN_POST, "--dry-run", cwd=workdir, env={"MASTODON_ACCESS_TOKEN": ""})
    real = run_publish(EN_POST, cwd=workdir, env={"MASTODON_ACCESS_TOKEN": "token-1234"})
    line = (f"error: {workdir / 'publisher.toml'} [channels.mastodon]: unknown key 'timeuot'"
            " — use one of: access_token_env, attach_image, instance_url, timeout")
    assert (dry.returncode, dry.stderr.strip().splitlines()) == (3, [line])
    assert (real.returncode, real.stderr.strip().splitlines()) == (3, [line])
    assert not (workdir / "outbox").exists()


def test_a_dry_run_reads_no_secret_and_opens_no_connection(workdir: Path) -> None:
    _bluesky_on_a_closed_port(workdir)
    result = run_publish(EN_POST, "--dry-run", cwd=workdir, env={"BLUESKY_APP_PASSWORD": ""})
    assert result.returncode == 0, result.stderr
    assert table_rows(result.stdout, column=3)["bluesky"] == "bluesky"  # planned live


def _bluesky_on_a_closed_port(workdir: Path) -> None:
    """A publisher.toml that posts to Bluesky at a port nothing listens on."""
    with socket.socket() as probe:  # a port nothing listens on once this closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (workdir / "publisher.toml").write_text(
        '[social]\nnetworks = ["bluesky"]\n\n[channels.bluesky]\nhandle = "editor.example.com"\n'
        f'pds_url = "http://127.0.0.1:{port}"\n', encoding="utf-8")
