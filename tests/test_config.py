"""Config: defaults < config.toml < profile < -c overrides, and clear errors for every mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_tui.config import ConfigError, default_home, load_config, parse_override


def write(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text, encoding="utf-8")


def test_defaults_without_a_file(isolated_home: Path) -> None:
    cfg = load_config()
    assert cfg.home == isolated_home == default_home()
    assert (cfg.model, cfg.model_provider, cfg.sandbox_mode, cfg.max_parallel_tasks) == (
        "gpt-5-codex",
        "openai",
        "auto",
        4,
    )
    assert cfg.data_dir == isolated_home / "data"
    assert cfg.source == str(isolated_home / "config.toml")


def test_profile_and_overrides_win_in_order(isolated_home: Path) -> None:
    write(
        isolated_home,
        'model = "base"\nmax_parallel_tasks = 2\nprofile = "fast"\n'
        '[profiles.fast]\nmodel = "quick"\nmodel_reasoning_effort = "low"\n'
        '[profiles.deep]\nmodel = "thinker"\n'
        '[sandbox]\nmode = "read-only"\ncpus = 1.5\n',
    )
    cfg = load_config()
    assert (cfg.model, cfg.model_reasoning_effort, cfg.max_parallel_tasks) == ("quick", "low", 2)
    assert (cfg.sandbox_mode, cfg.sandbox_cpus) == ("read-only", 1.5)
    cfg = load_config(profile="deep", overrides=["max_parallel_tasks=8", "model=o3"])
    assert (cfg.model, cfg.max_parallel_tasks) == ("o3", 8)


def test_custom_provider_from_file_and_overrides(isolated_home: Path) -> None:
    write(isolated_home, '[model_providers.local]\nbase_url = "http://127.0.0.1:9/v1"\nwire_api = "chat"\n')
    cfg = load_config(overrides=["model_provider=local"])
    provider = cfg.provider
    assert (provider.base_url, provider.wire_api, provider.requires_api_key, provider.env_key) == (
        "http://127.0.0.1:9/v1",
        "chat",
        False,
        None,
    )
    cfg = load_config(
        overrides=["model_providers.ollama.base_url=http://gpu:11434/v1", "model_provider=ollama"]
    )
    assert cfg.provider.base_url == "http://gpu:11434/v1" and cfg.provider.wire_api == "chat"


def test_override_values_are_toml_or_bare_strings() -> None:
    assert parse_override("model=o3") == ("model", "o3")
    assert parse_override("sandbox_cpus=1.5") == ("sandbox_cpus", 1.5)
    assert parse_override("include_uncommitted=false") == ("include_uncommitted", False)
    assert parse_override('model="a b"') == ("model", "a b")


@pytest.mark.parametrize(
    ("text", "overrides", "profile", "expected"),
    [
        ("model = 3\n", [], None, "key 'model': expected a string, got 3"),
        ("max_parallel_tasks = 0\n", [], None, "must be at least 1"),
        ("max_parallel_tasks = true\n", [], None, "expected an integer, got a boolean"),
        ('sandbox_mode = "yolo"\n', [], None, "'yolo' is not one of read-only, auto, full-access"),
        ("colour = 1\n", [], None, "unknown key 'colour'"),
        ("model = \n", [], None, "not valid TOML"),
        ("", ["model"], None, "expected key=value"),
        ("", [], "nope", "profile 'nope' not found"),
        ("profile = 3\n", [], None, "'profile' must be a profile name"),
        ("profile = [1]\n", [], None, "'profile' must be a profile name"),
        ("[profiles]\nfast = 3\n", [], "fast", "[profiles.fast] must be a table"),
        ('[model_providers.x]\ncolour = "red"\n', [], None, "[model_providers.x]: unknown key 'colour'"),
        ("keymap = 3\n", [], None, 'expected a table of id = "key"'),
        ("model_context_window = 0\n", [], None, "key 'model_context_window': must be at least 1, got 0"),
        ("shell_timeout_ms = -5\n", [], None, "key 'shell_timeout_ms': must be at least 1, got -5"),
        ("stream_idle_timeout_s = 0\n", [], None, "'stream_idle_timeout_s': must be greater than 0"),
        ("stream_idle_timeout_s = nan\n", [], None, "must be a finite number, got nan"),
        ("request_max_retries = -1\n", [], None, "key 'request_max_retries': must be 0 or more"),
        ("[sandbox]\ncpus = 0\n", [], None, "[sandbox]: key 'cpus': must be greater than 0, got 0"),
        ("[sandbox]\nmemory_mb = -1\n", [], None, "[sandbox]: key 'memory_mb': must be at least 1"),
        ('[sandbox]\nmode = "yolo"\n', [], None, "[sandbox]: key 'mode': 'yolo' is not one of"),
        ("[sandbox]\ncolour = 1\n", [], None, "[sandbox]: unknown key 'colour'"),
        ("sandbox = 3\n", [], None, "key 'sandbox': expected a table"),
        ("", ["sandbox.pids=0"], None, "-c sandbox.pids=0: [sandbox]: key 'pids': must be at least 1"),
    ],
)
def test_mistakes_are_config_errors_that_name_the_place(
    isolated_home: Path, text: str, overrides: list[str], profile: str | None, expected: str
) -> None:
    write(isolated_home, text)
    with pytest.raises(ConfigError) as error:
        load_config(profile=profile, overrides=overrides)
    assert expected in str(error.value)


def test_undefined_provider_lists_the_known_ones(isolated_home: Path) -> None:
    cfg = load_config(overrides=["model_provider=mystery"])
    with pytest.raises(
        ConfigError, match=r"'mystery' is not defined \(known: lmstudio, ollama, openai, openrouter"
    ):
        _ = cfg.provider


def test_config_file_that_is_not_utf8_is_one_clear_error(isolated_home: Path) -> None:
    (isolated_home / "config.toml").write_bytes(b'model = "caf\xe9"\n')
    with pytest.raises(ConfigError) as error:
        load_config()
    assert str(error.value) == f"{isolated_home / 'config.toml'}: not UTF-8 text (byte 12 cannot be decoded)"


def test_config_path_that_is_a_folder_is_one_clear_error(isolated_home: Path) -> None:
    (isolated_home / "config.toml").mkdir()
    with pytest.raises(ConfigError) as error:
        load_config()
    assert str(error.value) == f"{isolated_home / 'config.toml'}: cannot read: it is a folder, not a file"


def test_zero_retries_and_fractional_limits_are_accepted(isolated_home: Path) -> None:
    write(isolated_home, "request_max_retries = 0\nstream_idle_timeout_s = 0.5\n[sandbox]\ncpus = 0.5\n")
    cfg = load_config()
    assert (cfg.request_max_retries, cfg.stream_idle_timeout_s, cfg.sandbox_cpus) == (0, 0.5, 0.5)


def test_readme_configuration_example_loads_as_documented(isolated_home: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    example = readme.split("## Configuration", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    write(isolated_home, example)
    cfg = load_config()
    assert (cfg.model, cfg.model_provider, cfg.sandbox_mode, cfg.sandbox_memory_mb) == (
        "gpt-5-codex",
        "openai",
        "auto",
        4096,
    )
    assert load_config(profile="local").provider.wire_api == "chat"
    vllm = load_config(overrides=["model_provider=vllm"]).provider
    assert (vllm.base_url, vllm.wire_api, vllm.env_key) == (
        "http://localhost:8000/v1",
        "chat",
        "VLLM_API_KEY",
    )
