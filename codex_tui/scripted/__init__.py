"""The scripted model server: a real HTTP server speaking both OpenAI wire APIs with canned answers.

A test and demo server, not a model client (those are in `codex_tui.models`): `--demo` and every
test drive the real `openai` client against it. See `codex_tui.scripted.server` for the scenario
format; `python -m codex_tui.scripted --scenario FILE --port N` runs it standalone.
"""

from codex_tui.scripted.scenario import ScenarioError
from codex_tui.scripted.server import FINISHED_TEXT, RecordedRequest, ScriptedServer, load_scenarios

__all__ = ["FINISHED_TEXT", "RecordedRequest", "ScenarioError", "ScriptedServer", "load_scenarios"]
