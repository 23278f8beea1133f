"""The environment model: where settings come from, secrets, masking, and the cache keys (no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_tui.config import Config, ConfigError, load_config
from codex_tui.sandbox.base import SandboxError
from codex_tui.sandbox.env_image import env_image_tag, maintenance_inputs, maintenance_key, setup_inputs
from codex_tui.sandbox.environment import (
    Environment,
    SecretMasker,
    load_environment,
    resolve_secrets,
)
from codex_tui.tasks.submission import check_submission


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_repository_file_is_overridden_by_config_and_task(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _write(
        repo / ".codex-tui/environment.toml",
        '[environment]\nsetup = "pip install -r requirements.txt"\nnetwork_access = "on"\n'
        'allowed_domains = ["pypi.org"]\nenv = { MODE = "ci" }\nsecrets = ["NPM_TOKEN"]\n',
    )
    home = tmp_path / "home"
    _write(home / "config.toml", 'network_access = "limited"\n')
    cfg = load_config(home=home)
    env = load_environment(cfg, repo, allowed_domains=["*.npmjs.org"])
    assert env.setup == "pip install -r requirements.txt"
    assert env.network.access == "limited"
    assert env.network.domains == ("pypi.org", "*.npmjs.org")
    assert env.env == {"MODE": "ci"} and env.secret_names == ("NPM_TOKEN",)
    assert load_environment(cfg, repo, network="off").network.access == "off"


def test_default_network_is_off_with_safe_methods(tmp_path: Path) -> None:
    env = load_environment(Config(home=tmp_path), tmp_path)
    assert env.network.access == "off"
    assert env.network.methods == ("GET", "HEAD", "OPTIONS")


def test_registries_preset_expands_to_package_registries(tmp_path: Path) -> None:
    cfg = load_config(home=tmp_path, overrides=['allowed_domains=["@registries", "example.org"]'])
    domains = load_environment(cfg, None).network.domains
    assert {"pypi.org", "registry.npmjs.org", "crates.io", "proxy.golang.org", "deb.debian.org"} <= set(
        domains
    )
    assert domains[-1] == "example.org"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("network_access=sometimes", "'sometimes' is not one of off, limited, on"),
        ('allowed_domains=["http://pypi.org"]', "is a URL, not a domain"),
        ('allowed_domains=["*.org"]', "is not a domain name"),
        ('allowed_domains=["pypi.org:99999"]', "bad port"),
        ('allowed_methods=["TRACE"]', "'TRACE' is not one of"),
        ("environment.secrets=['NOT-A-NAME']", "is not a variable name"),
        ("environment.colour=1", "unknown key 'colour'"),
    ],
)
def test_bad_environment_settings_name_the_key(tmp_path: Path, override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(home=tmp_path, overrides=[override])


def test_bad_repository_file_names_the_file(tmp_path: Path) -> None:
    _write(tmp_path / ".codex-tui/environment.toml", 'network_access = "wide open"\n')
    with pytest.raises(ConfigError, match=r"environment\.toml: key 'network_access'"):
        load_environment(Config(home=tmp_path / "home"), tmp_path)


def test_secret_comes_from_host_environment_before_the_secrets_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = _write(tmp_path / "home/secrets.toml", 'API_PASSWORD = "from-the-file"\nOTHER = "x"\n')
    secrets.chmod(0o600)
    monkeypatch.setenv("DEPLOY_TOKEN", "from-the-environment")
    monkeypatch.delenv("API_PASSWORD", raising=False)
    values = resolve_secrets(("DEPLOY_TOKEN", "API_PASSWORD"), tmp_path / "home", tmp_path / "repo")
    assert values == {"DEPLOY_TOKEN": "from-the-environment", "API_PASSWORD": "from-the-file"}


def test_missing_secret_is_named_without_any_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOWHERE_TOKEN", raising=False)
    with pytest.raises(SandboxError, match="secret NOWHERE_TOKEN is neither"):
        resolve_secrets(("NOWHERE_TOKEN",), tmp_path, None)


def test_secrets_file_inside_the_repository_or_readable_by_others_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("A_TOKEN", raising=False)
    inside = _write(tmp_path / "repo/.home/secrets.toml", 'A_TOKEN = "abcdef"\n')
    inside.chmod(0o600)
    with pytest.raises(SandboxError, match="inside the repository"):
        resolve_secrets(("A_TOKEN",), tmp_path / "repo/.home", tmp_path / "repo")
    loose = _write(tmp_path / "home/secrets.toml", 'A_TOKEN = "abcdef"\n')
    loose.chmod(0o644)
    with pytest.raises(SandboxError, match="chmod 600"):
        resolve_secrets(("A_TOKEN",), tmp_path / "home", tmp_path / "repo")


def test_too_short_secret_is_refused_because_it_cannot_be_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIN_TOKEN", "123")
    with pytest.raises(SandboxError, match="cannot be masked"):
        resolve_secrets(("PIN_TOKEN",), tmp_path, None)


def test_masker_hides_a_secret_split_across_chunks_and_streams() -> None:
    masker = SecretMasker({"T": "s3cr3t-value"})
    out = masker.feed("stdout", b"token=s3cr") + masker.feed("stdout", b"3t-val")
    out += masker.feed("stdout", b"ue done\n") + masker.flush("stdout")
    assert out == b"token=*** done\n"
    assert masker.feed("stderr", b"no secret here\n") == b"no secret here\n"
    assert masker.feed("stderr", b"ends with s3c") == b"ends with "
    assert masker.flush("stderr") == b"s3c"
    assert masker.mask_text("x s3cr3t-value y") == "x *** y"


def test_cache_key_covers_the_definition_but_never_secret_values(tmp_path: Path) -> None:
    plain = Environment(secret_names=("NPM_TOKEN",))
    tag = env_image_tag("sha256:base", tmp_path, "echo hi", plain)
    assert env_image_tag("sha256:base", tmp_path, "echo hi", Environment(secret_names=("NPM_TOKEN",))) == tag
    assert env_image_tag("sha256:base", tmp_path, "echo hi", Environment(secret_names=("OTHER",))) != tag
    assert env_image_tag("sha256:base", tmp_path, "echo hi", Environment(env={"A": "1"})) != tag


def test_files_named_by_maintenance_leave_the_setup_key_and_decide_the_maintenance_key(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "requirements.txt", "requests==2\n")
    _write(tmp_path / "package-lock.json", "{}\n")
    env = Environment(
        maintenance="pip install -r requirements.txt", maintenance_inputs=("requirements*.txt",)
    )
    script = "pip install -r requirements.txt"
    assert [p.name for p in maintenance_inputs(tmp_path, env)] == ["requirements.txt"]
    assert [p.name for p in setup_inputs(tmp_path, script, env)] == ["package-lock.json"]
    tag, key = env_image_tag("b", tmp_path, script, env), maintenance_key(tmp_path, env)
    _write(tmp_path / "requirements.txt", "requests==3\n")
    assert env_image_tag("b", tmp_path, script, env) == tag
    assert maintenance_key(tmp_path, env) != key
    _write(tmp_path / "package-lock.json", '{"changed": 1}\n')
    assert env_image_tag("b", tmp_path, script, env) != tag


def test_without_a_maintenance_script_its_inputs_stay_in_the_setup_key(tmp_path: Path) -> None:
    _write(tmp_path / "requirements.txt", "a\n")
    env = Environment(maintenance_inputs=("requirements.txt",))
    assert [p.name for p in setup_inputs(tmp_path, "true", env)] == ["requirements.txt"]
    assert maintenance_key(tmp_path, env) == ""


def test_submission_checks_network_and_allowed_domains(tmp_path: Path) -> None:
    cfg = Config(home=tmp_path)
    ok = check_submission(
        {"prompt": "x", "network": "limited", "allowed_domains": ["pypi.org"]}, cfg, tmp_path
    )
    assert not isinstance(ok, str) and ok.network == "limited" and ok.allowed_domains == ["pypi.org"]
    assert check_submission({"prompt": "x", "network": "wide"}, cfg, tmp_path) == (
        "network 'wide' is not one of off, limited, on"
    )
    bad = check_submission({"prompt": "x", "allowed_domains": ["a b"]}, cfg, tmp_path)
    assert isinstance(bad, str) and "is not a domain name" in bad


def test_an_environment_that_adds_nothing_keeps_the_earlier_cache_tags(tmp_path: Path) -> None:
    assert env_image_tag("b", tmp_path, "echo", Environment()) == env_image_tag("b", tmp_path, "echo")


def test_readme_environments_example_loads_as_documented(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    example = readme.split("## Environments", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    _write(tmp_path / "config.toml", example)
    env = load_environment(load_config(home=tmp_path), None)
    assert env.network.access == "limited" and "pypi.org" in env.network.domains
    assert env.network.domains[-3:] == ("example.org", "*.example.com", "10.0.0.5:8080")
    assert env.maintenance_inputs == ("requirements*.txt",) and env.secret_names == ("NPM_TOKEN",)
