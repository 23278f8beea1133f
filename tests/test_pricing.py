"""The price table: model matching, cost of a usage with cached input, config overrides and mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from codex_tui.config import ConfigError, load_config
from codex_tui.models.base import Usage
from codex_tui.pricing import DEFAULT_PRICES, Price, TokenCounts, estimate, format_usd, price_for


def test_every_current_openai_model_has_a_default_price() -> None:
    for model in (
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-5-codex",
        "gpt-4.1",
        "gpt-4.1-mini",
        "o4-mini",
        "gpt-4o",
        "gpt-4o-mini",
    ):
        found = price_for(model)
        assert found is not None and found[0] == model
        assert found[1].cached_input <= found[1].input < found[1].output


def test_dated_snapshot_takes_the_longest_matching_entry() -> None:
    assert price_for("gpt-4.1-mini-2025-04-14") == ("gpt-4.1-mini", DEFAULT_PRICES["gpt-4.1-mini"])
    assert price_for("gpt-4o-2024-08-06") == ("gpt-4o", DEFAULT_PRICES["gpt-4o"])
    assert price_for("GPT-5-Codex") == ("gpt-5-codex", DEFAULT_PRICES["gpt-5-codex"])
    tagged = {"qwen2.5-coder": Price(0.1, 0.1, 0.2)}
    assert price_for("qwen2.5-coder:14b", tagged) == ("qwen2.5-coder", Price(0.1, 0.1, 0.2))


def test_a_name_that_only_starts_like_a_model_is_not_priced() -> None:
    assert price_for("gpt-5.1") is None  # not a snapshot of gpt-5
    assert price_for("my-local-llama") is None
    assert estimate("my-local-llama", Usage(1000, 0, 100)) is None


def test_cached_input_is_billed_at_the_cached_price() -> None:
    # gpt-5: 1.25 input, 0.125 cached input, 10 output (USD per 1M tokens)
    cost = estimate(
        "gpt-5", Usage(input_tokens=1_000_000, cached_input_tokens=400_000, output_tokens=100_000)
    )
    assert cost is not None and cost.model == "gpt-5"
    assert cost.usd == pytest.approx(0.6 * 1.25 + 0.4 * 0.125 + 0.1 * 10)


def test_cached_count_larger_than_input_is_clamped() -> None:
    cost = estimate("gpt-5", TokenCounts(input_tokens=100, cached_input_tokens=500, output_tokens=0))
    assert cost is not None and cost.usd == pytest.approx(100 * 0.125 / 1_000_000)


def test_overrides_win_over_defaults_and_add_models() -> None:
    overrides = {"gpt-5": Price(2.0, 0.2, 20.0), "my-model": Price(1.0, 0.5, 3.0)}
    assert price_for("gpt-5-2025-08-07", overrides) == ("gpt-5", Price(2.0, 0.2, 20.0))
    cost = estimate("my-model", Usage(2_000_000, 0, 1_000_000), overrides)
    assert cost is not None and cost.usd == pytest.approx(5.0)


def test_usd_is_compact_and_unknown_is_a_question_mark() -> None:
    assert format_usd(None) == "?"
    assert format_usd(0.0) == "$0.00"
    assert format_usd(0.0031) == "$0.0031"
    assert format_usd(0.4249) == "$0.42"
    assert format_usd(1234.5) == "$1,234.50"


def test_token_counts_from_event_usage_ignore_bad_values() -> None:
    counts = TokenCounts.from_dict({"input_tokens": 10, "cached_input_tokens": "x", "output_tokens": True})
    assert counts == TokenCounts(10, 0, 0)


def _config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text, encoding="utf-8")


def test_config_pricing_tables_override_and_extend(tmp_path: Path) -> None:
    _config(
        tmp_path,
        '[pricing."my-model"]\ninput = 1.25\noutput = 10\n\n[pricing."gpt-5"]\noutput = 12.5\n',
    )
    cfg = load_config(home=tmp_path)
    assert cfg.pricing["my-model"] == Price(1.25, 1.25, 10.0)  # no cached price: no discount
    assert cfg.pricing["gpt-5"] == Price(1.25, 0.125, 12.5)  # the rest from the default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pricing = 3\n", "key 'pricing': expected a table"),
        ('[pricing."m"]\ninput = "cheap"\noutput = 1\n', "[pricing.\"m\"]: key 'input': expected a number"),
        ('[pricing."m"]\ninput = -1\noutput = 1\n', "key 'input': must be a finite number, 0 or more"),
        ('[pricing."m"]\ninput = 1\n', "'m' has no default price: key 'output' is required"),
        ('[pricing."gpt-5"]\nprompt = 1\n', "unknown key 'prompt' (known: input, cached_input, output)"),
        ('[pricing."m"]\ninput = true\noutput = 1\n', "key 'input': expected a number"),
    ],
)
def test_bad_pricing_is_one_clear_config_error(tmp_path: Path, text: str, expected: str) -> None:
    _config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(home=tmp_path)
    assert expected in str(info.value)
    assert str(tmp_path / "config.toml") in str(info.value)


def test_notifications_setting_is_checked(tmp_path: Path) -> None:
    _config(tmp_path, 'notifications = "osc777"\n')
    assert load_config(home=tmp_path).notifications == "osc777"
    _config(tmp_path, 'notifications = "loud"\n')
    with pytest.raises(ConfigError, match="'loud' is not one of auto, osc9, osc777, off"):
        load_config(home=tmp_path)
