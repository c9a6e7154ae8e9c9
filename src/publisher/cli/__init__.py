"""The `publish` command: parse, call the core, map errors to exit codes, render.

One module per verb (send.py is `publish POST`, status.py, retract.py, subscribers.py, …);
app.py holds the typer app, wires the verbs in and turns errors into exit codes; common.py
the shared arguments (POST, --config, --json), the settings loader and the CLI's exit codes;
render.py the console and escaping; report.py the status and failure wording.

To add a verb `publish frob`:
1. Write cli/frob.py with one `frob_command(...)` whose parameters are typer `Annotated`
   options (reuse common.PostArg, ConfigOpt, JsonOpt) and whose docstring is its help line.
   Keep it thin: load settings with common.load_settings, call one core function, print
   through render.console; raise the core's PublisherError (app.main maps it to its exit
   code) or `typer.Exit(code)` with a code from common. Import the core inside the function,
   so `publish --help` and a dry run stay fast (tests/test_dry_run_imports.py checks).
   A verb with subcommands defines its own `typer.Typer` there, as subscribers.py does.
2. In app.py, import the module and register it where it should appear in `publish --help`:
   `app.command("frob")(frob.frob_command)` (or `app.add_typer(frob.frob_app, name="frob")`).
3. Test it through the CLI (tests/test_cli.py's way) and document it in the README's commands.
"""
