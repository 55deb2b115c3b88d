"""`--config run.toml`: every long option may be set in a TOML file, checked by the option's own type and
choices; command-line options win; every problem is one ConfigError line naming the file and the key."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest

from sse_perf_tool.cli import build_run_parser
from sse_perf_tool.config import ConfigError
from sse_perf_tool.config_file import load_config_file

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, parser: argparse.ArgumentParser | None = None) -> dict:
    return load_config_file(str(write(tmp_path, text)), parser or build_run_parser())


def problem(tmp_path: Path, text: str, parser: argparse.ArgumentParser | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, parser)
    message = str(info.value)
    assert "\n" not in message, "a config problem is one line"
    assert message.startswith(str(tmp_path / "run.toml") + ": "), "the message names the file first"
    return message


def generic_parser() -> argparse.ArgumentParser:
    """Every kind of action, apart from the real parser, whose options are still growing."""
    p = argparse.ArgumentParser(prog="t")
    p.add_argument("--name")
    p.add_argument("--count", type=int)
    p.add_argument("--ratio", type=float)
    p.add_argument("--mode", choices=("fast", "slow"), default="fast")
    p.add_argument("--level", type=int, choices=(1, 2, 3))
    p.add_argument("--tag", action="append", default=[])
    p.add_argument("--size", type=int, action="append", default=[])
    p.add_argument("--values", type=int, nargs="+")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--no-color", dest="color", action="store_false")
    p.add_argument("--cache", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--debug", action="count", default=0)
    p.add_argument("--token-secret")
    p.add_argument("--config")
    p.add_argument("-x", help="short-only options cannot be named in the file")
    return p


# --- the end-to-end rule: the file gives defaults, the command line wins -----------------------------


def test_command_line_wins_and_the_file_fills_the_rest(tmp_path):
    parser = build_run_parser()
    path = write(tmp_path, 'threads = 4\nduration = 20\nramp-up = 5\napi = "openai-chat"\nmodel = "qwen"\n'
                           'demo = true\nheader = ["X-A: 1"]\n')
    parser.set_defaults(**load_config_file(str(path), parser))
    args = parser.parse_args(["--threads", "9"])
    assert args.threads == 9
    assert (args.duration, args.ramp_up, args.api, args.model, args.demo) == (20.0, 5.0, "openai-chat", "qwen", True)
    assert args.header == ["X-A: 1"]


def test_command_line_flag_value_overrides_file_value_of_same_option(tmp_path):
    parser = build_run_parser()
    parser.set_defaults(**load_config_file(write(tmp_path, 'api = "openai-chat"\nduration = 30\n'), parser))
    args = parser.parse_args(["--api", "dify-chat", "--execution-time", "5"])
    assert (args.api, args.duration) == ("dify-chat", 5.0)


def test_append_option_on_the_command_line_adds_to_the_files_list_without_changing_it(tmp_path):
    parser = build_run_parser()
    values = load_config_file(write(tmp_path, 'header = ["X-A: 1"]\n'), parser)
    parser.set_defaults(**values)
    assert parser.parse_args(["--header", "X-B: 2"]).header == ["X-A: 1", "X-B: 2"]
    assert parser.parse_args([]).header == ["X-A: 1"], "argparse copies the default list; the file's stays"


def test_values_are_converted_by_the_options_own_types(tmp_path):
    values = load(tmp_path, 'threads = 8\nduration = 30\ntimeout = 2.5\nport = "8080"\nmax-tokens = 64\n'
                            'temperature = 0\nmodel-name = 2024\n')
    assert values == {"threads": 8, "duration": 30.0, "timeout": 2.5, "port": 8080, "max_tokens": 64,
                      "temperature": 0.0, "model_name": "2024"}
    assert isinstance(values["duration"], float) and isinstance(values["threads"], int)


def test_empty_file_sets_nothing(tmp_path):
    assert load(tmp_path, "") == {}
    assert load(tmp_path, "# only a comment\n\n") == {}


def test_empty_run_table_sets_nothing(tmp_path):
    assert load(tmp_path, "[run]\n") == {}


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "run.toml"
    path.write_bytes(b"\xef\xbb\xbfthreads = 3\n")
    assert load_config_file(str(path), build_run_parser()) == {"threads": 3}


def test_path_objects_are_accepted(tmp_path):
    assert load_config_file(write(tmp_path, "threads = 2\n"), build_run_parser()) == {"threads": 2}


def test_non_ascii_text_values_survive(tmp_path):
    assert load(tmp_path, 'query = "你是谁"\n') == {"query": "你是谁"}


# --- key names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["ramp-up", "ramp_up"])
def test_dashes_and_underscores_name_the_same_option(tmp_path, key):
    assert load(tmp_path, f"{key} = 10\n") == {"ramp_up": 10.0}


def test_an_alias_sets_the_options_dest(tmp_path):
    assert load(tmp_path, "execution-time = 45\n") == {"duration": 45.0}


def test_options_may_sit_in_a_run_table(tmp_path):
    assert load(tmp_path, 'threads = 2\n[run]\nduration = 7\nbase_url = "http://x:1/v1"\n') == {
        "threads": 2, "duration": 7.0, "base_url": "http://x:1/v1"}


def test_the_same_option_in_the_top_level_and_in_run_is_an_error(tmp_path):
    message = problem(tmp_path, "threads = 2\n[run]\nthreads = 3\n")
    assert "'threads' and 'threads' in [run] both set --threads" in message


@pytest.mark.parametrize("text", ["ramp-up = 1\nramp_up = 2\n", "duration = 1\nexecution-time = 2\n"])
def test_two_spellings_of_one_option_are_an_error(tmp_path, text):
    message = problem(tmp_path, text)
    assert "both set --" in message


def test_unknown_key_suggests_the_closest_option(tmp_path):
    message = problem(tmp_path, "thread = 4\n")
    assert message == f"{tmp_path / 'run.toml'}: unknown option 'thread' (did you mean 'threads'?)"


def test_unknown_key_in_run_table_is_named_with_the_table(tmp_path):
    message = problem(tmp_path, "[run]\nramp_upp = 4\n")
    assert "unknown option 'ramp_upp' in [run] (did you mean 'ramp-up'?)" in message


def test_unknown_key_far_from_every_option_has_no_suggestion(tmp_path):
    message = problem(tmp_path, "zzzzqqq = 1\n")
    assert message.endswith("unknown option 'zzzzqqq'")


def test_unknown_table_says_where_options_go(tmp_path):
    message = problem(tmp_path, "[load]\nthreads = 4\n")
    assert "unknown table 'load'" in message and "[run]" in message


@pytest.mark.parametrize("key", ["help", "version", "config"])
def test_help_version_and_config_cannot_be_set(tmp_path, key):
    message = problem(tmp_path, f"{key} = true\n")
    assert f"'{key}' cannot be set in a config file" in message


def test_config_is_refused_even_when_the_parser_has_a_config_option(tmp_path):
    message = problem(tmp_path, 'config = "other.toml"\n', generic_parser())
    assert "'config' cannot be set" in message


def test_short_only_options_are_not_keys(tmp_path):
    message = problem(tmp_path, 'x = "1"\n', generic_parser())
    assert "unknown option 'x'" in message


def test_every_long_option_of_the_real_parser_is_accepted(tmp_path):
    """New options (--rate, --slo, ...) work in the file with no change here: the parser is the list."""
    parser = build_run_parser()
    for action in parser._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if not longs or longs[0] in ("--help", "--version", "--config"):
            continue
        key = longs[0][2:]
        if isinstance(action, argparse._StoreConstAction):
            text = f"{key} = true\n"
        elif action.choices is not None:
            text = f'{key} = "{list(action.choices)[0]}"\n'
        elif action.type is not None:
            text = f"{key} = 1\n"
        else:
            text = f'{key} = "a: b"\n'
        assert action.dest in load(tmp_path, text, parser), key


# --- values of the wrong kind -------------------------------------------------------------------------


def test_text_that_is_not_a_whole_number(tmp_path):
    message = problem(tmp_path, 'threads = "many"\n')
    assert message == f'{tmp_path / "run.toml"}: \'threads\' must be a whole number (got "many")'


@pytest.mark.parametrize("text,needle", [
    ("threads = 2.5\n", "'threads' must be a whole number (got 2.5)"),
    ("threads = true\n", "'threads' must be a whole number (got true)"),
    ("duration = false\n", "'duration' must be a number (got false)"),
    ('duration = "soon"\n', "'duration' must be a number (got \"soon\")"),
    ("duration = nan\n", "'duration' must be a finite number (got nan)"),
    ("duration = inf\n", "'duration' must be a finite number (got inf)"),
    ("duration = 1979-05-27\n", "'duration' must be a number (got a date/time)"),
    ("threads = {a = 1}\n", "'threads' must be a whole number (got a table)"),
    ("threads = [1, 2]\n", "'threads' must be a whole number (got [1, 2])"),
    ("model = true\n", "'model' must be text (got true)"),
    ("[run]\nthreads = \"x\"\n", "'threads' in [run] must be a whole number (got \"x\")"),
])
def test_wrong_types_name_the_key_and_what_it_takes(tmp_path, text, needle):
    assert needle in problem(tmp_path, text)


def test_choices_are_checked(tmp_path):
    message = problem(tmp_path, 'api = "grpc"\n')
    assert "'api' must be one of dify-chat," in message and '(got "grpc")' in message


def test_choices_after_the_type(tmp_path):
    assert load(tmp_path, "level = 2\n", generic_parser()) == {"level": 2}
    assert "'level' must be one of 1, 2, 3 (got 5)" in problem(tmp_path, "level = 5\n", generic_parser())


def test_long_values_are_shortened_in_messages(tmp_path):
    message = problem(tmp_path, f'threads = "{"9x" * 200}"\n')
    assert "..." in message and len(message) < len(str(tmp_path)) + 150


# --- flags --------------------------------------------------------------------------------------------


def test_store_true_takes_a_toml_bool(tmp_path):
    assert load(tmp_path, "demo = true\nquiet = false\n") == {"demo": True, "quiet": False}


@pytest.mark.parametrize("value", ['"yes"', "1", '"true"'])
def test_store_true_refuses_anything_but_a_bool(tmp_path, value):
    message = problem(tmp_path, f"demo = {value}\n")
    assert "'demo' must be true or false" in message


def test_store_false_flag_true_stores_false(tmp_path):
    parser = generic_parser()
    assert load(tmp_path, "no-color = true\n", parser) == {"color": False}
    assert load(tmp_path, "no_color = false\n", parser) == {"color": True}


def test_boolean_optional_action_both_spellings(tmp_path):
    parser = generic_parser()
    assert load(tmp_path, "cache = false\n", parser) == {"cache": False}
    assert load(tmp_path, "no-cache = true\n", parser) == {"cache": False}
    assert "both set --cache" in problem(tmp_path, "cache = true\nno-cache = true\n", parser)


def test_count_action_takes_a_whole_number(tmp_path):
    assert load(tmp_path, "debug = 2\n", generic_parser()) == {"debug": 2}
    assert "'debug' must be a whole number" in problem(tmp_path, "debug = true\n", generic_parser())


# --- lists --------------------------------------------------------------------------------------------


def test_append_option_takes_a_list_or_a_single_value(tmp_path):
    parser = generic_parser()
    assert load(tmp_path, 'tag = ["a", "b"]\n', parser) == {"tag": ["a", "b"]}
    assert load(tmp_path, 'tag = "a"\n', parser) == {"tag": ["a"]}
    assert load(tmp_path, "tag = []\n", parser) == {"tag": []}


def test_append_option_converts_each_element(tmp_path):
    parser = generic_parser()
    assert load(tmp_path, 'size = [1, "2"]\n', parser) == {"size": [1, 2]}
    assert "'size' must be a whole number (got \"big\")" in problem(tmp_path, 'size = [1, "big"]\n', parser)
    assert "'size' must be a whole number (got true)" in problem(tmp_path, "size = [true]\n", parser)


def test_real_append_options_take_lists(tmp_path):
    values = load(tmp_path, 'header = ["X-A: 1", "X-B: 2"]\ngpu = "local"\nserver-metrics = []\n')
    assert values == {"header": ["X-A: 1", "X-B: 2"], "gpu": ["local"], "server_metrics": []}


def test_nargs_plus_option_takes_a_list(tmp_path):
    assert load(tmp_path, "values = [1, 2, 4]\n", generic_parser()) == {"values": [1, 2, 4]}
    assert load(tmp_path, "values = 3\n", generic_parser()) == {"values": [3]}


def test_list_for_a_text_option_is_joined_with_commas(tmp_path):
    parser = generic_parser()
    assert load(tmp_path, "name = [1, 2, 4]\n", parser) == {"name": "1,2,4"}
    assert load(tmp_path, 'name = ["ttft_p95<800ms", "success>=99%"]\n', parser) == {
        "name": "ttft_p95<800ms,success>=99%"}
    assert load(tmp_path, 'gpu-index = [0, 1]\n') == {"gpu_index": "0,1"}


def test_list_joining_goes_through_the_options_type(tmp_path):
    """A typed option that parses comma lists (like --sweep-threads may) gets "1,2,4" too."""
    p = argparse.ArgumentParser()
    p.add_argument("--levels", type=lambda text: [int(x) for x in text.split(",")])
    assert load(tmp_path, "levels = [1, 2, 4]\n", p) == {"levels": [1, 2, 4]}
    assert load(tmp_path, 'levels = "1,2"\n', p) == {"levels": [1, 2]}


@pytest.mark.parametrize("text,needle", [
    ("name = []\n", "'name' is an empty list"),
    ("name = [true, false]\n", "'name' must be text or a list of them"),
    ("name = [[1], [2]]\n", "'name' must be text or a list of them"),
])
def test_bad_lists_for_single_value_options(tmp_path, text, needle):
    assert needle in problem(tmp_path, text, generic_parser())


# --- the file itself ----------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file$"):
        load_config_file(str(tmp_path / "nope.toml"), build_run_parser())


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_config_file(str(tmp_path), build_run_parser())


@pytest.mark.skipif(sys.platform == "win32" or (hasattr(os, "geteuid") and os.geteuid() == 0),
                    reason="root and Windows ignore the mode bits")
def test_unreadable_file(tmp_path):
    path = write(tmp_path, "threads = 1\n")
    path.chmod(0)
    try:
        with pytest.raises(ConfigError, match="run.toml: cannot read the file"):
            load_config_file(str(path), build_run_parser())
    finally:
        path.chmod(0o644)


def test_read_error_is_one_line(tmp_path, monkeypatch):
    """Runs as root too, where mode bits do not stop reading: the OS error is faked at the seam."""
    path = write(tmp_path, "threads = 1\n")

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigError) as info:
        load_config_file(str(path), build_run_parser())
    assert str(info.value) == f"{path}: cannot read the file (permission denied)"


def test_not_utf8(tmp_path):
    path = tmp_path / "run.toml"
    path.write_bytes(b"threads = 1\nmodel = \"\xff\xfe\"\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(str(path), build_run_parser())
    assert str(info.value) == f"{path}: not UTF-8 text (byte 0xff on line 2)"


def test_toml_syntax_error_gives_line_and_column(tmp_path):
    message = problem(tmp_path, "threads = 4\nduration 30\n")
    assert "not valid TOML" in message and "line 2" in message and "column" in message


def test_toml_duplicate_key_is_a_syntax_error(tmp_path):
    assert "not valid TOML" in problem(tmp_path, "threads = 4\nthreads = 5\n")


# --- secrets ------------------------------------------------------------------------------------------


def test_api_key_is_allowed(tmp_path):
    assert load(tmp_path, 'api-key = "app-SECRET123"\n') == {"api_key": "app-SECRET123"}


@pytest.mark.parametrize("text", [
    'api-key = {k = "app-SECRET123"}\n',
    'api_key = ["app-SECRET123", true]\n',
    'token-secret = ["app-SECRET123", {a = 1}]\n',
])
def test_wrong_kind_of_secret_value_is_described_not_printed(tmp_path, text):
    parser = build_run_parser()
    if text.startswith("token"):
        parser = generic_parser()
    message = problem(tmp_path, text, parser)
    assert "SECRET123" not in message and "must be text" in message


def test_secret_with_a_rejecting_type_is_not_printed(tmp_path):
    p = argparse.ArgumentParser()

    def key_type(text):
        raise argparse.ArgumentTypeError(f"bad key {text!r}")

    p.add_argument("--api-key", type=key_type)
    message = problem(tmp_path, 'api-key = "app-SECRET123"\n', p)
    assert "SECRET123" not in message and "'api-key' must be" in message


# --- example files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["smoke.toml", "capacity-sweep.toml", "open-loop.toml", "mixed-datasets.toml"])
def test_example_configs_are_valid_toml_with_a_comment_header(name):
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert text.startswith("#"), "each example explains its use in a comment header"
    assert "sse-perf --config examples/" + name in text
    data = tomllib.loads(text)
    assert data, "each example sets some options"


def test_input_paths_in_a_config_file_are_relative_to_its_folder(tmp_path, monkeypatch):
    """A profile kept beside its query files works from any folder; outputs stay relative to the
    folder sse-perf runs in."""
    from sse_perf_tool.cli.run import parse_run_args

    profile = tmp_path / "profiles" / "run.toml"
    profile.parent.mkdir()
    profile.write_text('param-file = "q.txt"\napi-key-file = "/abs/keys.txt"\nextra-body = "@extra.json"\n'
                       'output-dir = "out"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    args = parse_run_args(["--config", str(profile)])
    assert args.param_file == str(profile.parent / "q.txt")
    assert args.api_key_file == "/abs/keys.txt" and args.extra_body == "@" + str(profile.parent / "extra.json")
    assert args.output_dir == "out"
    datasets = tmp_path / "sets.toml"
    datasets.write_text('dataset = ["maths=sets/maths.jsonl:2", "code=code.jsonl"]\n', encoding="utf-8")
    assert parse_run_args(["--config", str(datasets)]).dataset == [f"maths={tmp_path}/sets/maths.jsonl:2",
                                                                     f"code={tmp_path}/code.jsonl"]
