"""The console's forms (`sse-perf ui`): a New run form -> the command line it stands for
(ui_runs.command_of), checked as the run command checks it with errors by field (ui_runs.check,
field_of, _key_env), and a target to save (ui_server.check_target). Nothing is started here: the
runs themselves are in the integration tests."""

from __future__ import annotations

import pytest

from sse_perf_tool.cli.run import build_run_parser, config_from_args
from sse_perf_tool.cli.ui_runs import (DEFAULT_API, FIELDS, LINES, SINGLE, FormErrors, _key_env, check, command_of,
                                       field_of)
from sse_perf_tool.cli.ui_server import check_target
from sse_perf_tool.config import ConfigError

KEY = "app-formsecret0123456789abcdef"  # a key value that must never reach a command line


@pytest.fixture
def queries(tmp_path):
    path = tmp_path / "queries.txt"
    path.write_text("hello\nwho are you\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def demo(queries):
    """A valid demo form: the embedded server, a real query file."""
    return {"demo": True, "threads": "2", "duration": "5", "param_file": queries}


def errors_of(form: dict, environ: dict | None = None) -> dict:
    with pytest.raises(FormErrors) as caught:
        check(form, {} if environ is None else environ)
    return caught.value.errors


def only_error(form: dict, environ: dict | None = None) -> tuple[str, str]:
    errors = errors_of(form, environ)
    assert len(errors) == 1, errors
    return next(iter(errors.items()))


# -- command_of: the form as the user would type it --

def test_demo_form_starts_with_demo_and_leaves_out_the_base_url():
    argv = command_of({"demo": True, "base_url": "http://gpu1:8000/v1", "threads": "4"})
    assert argv[0] == "--demo"
    assert "--base-url" not in argv and "http://gpu1:8000/v1" not in argv
    assert argv == ["--demo", "--threads", "4"]


def test_a_form_without_demo_keeps_the_base_url_and_has_no_demo_option():
    argv = command_of({"demo": False, "base_url": "http://gpu1:8000/v1"})
    assert argv == ["--base-url", "http://gpu1:8000/v1"]


def test_every_single_field_becomes_option_value_in_single_order():
    values = {"base_url": "http://gpu1:8000/v1", "api": "openai-chat", "model": "qwen2.5-7b", "model_name": "qwen7b",
              "key_file": "keys.txt", "param_file": "queries.txt", "threads": "8", "rate": "4", "ramp_up": "3",
              "duration": "60", "requests": "500"}
    form = dict(reversed(list(values.items())))  # the form's own order does not matter
    expected = []
    for name, option in SINGLE:
        expected += [option, values[name]]
    assert command_of(form) == expected


def test_empty_and_whitespace_fields_are_left_out():
    form = {"demo": False, "base_url": "  ", "model": "", "threads": " \t", "duration": None, "slo": "\n  \n",
            "headers": "", "datasets": "   "}
    assert command_of(form) == []
    assert command_of({}) == []


def test_single_field_values_are_stripped():
    assert command_of({"threads": "  8 ", "model": "\tqwen3\n"}) == ["--model", "qwen3", "--threads", "8"]


@pytest.mark.parametrize("name,option", LINES)
def test_multi_line_fields_give_one_option_per_non_blank_line_stripped(name, option):
    form = {name: "  first one  \n\n   \nsecond\r\n\tthird\t"}
    assert command_of(form) == [option, "first one", option, "second", option, "third"]


def test_multi_line_fields_follow_the_single_fields_in_lines_order():
    form = {"headers": "X-Team: llm", "slo": "ttft_p95<800ms", "datasets": "a=a.txt", "threads": "2",
            "gpu": "local", "server_metrics": "http://gpu1:8000/metrics"}
    assert command_of(form) == ["--threads", "2", "--dataset", "a=a.txt", "--slo", "ttft_p95<800ms", "--gpu", "local",
                                "--server-metrics", "http://gpu1:8000/metrics", "--header", "X-Team: llm"]


def test_the_default_flavour_is_left_out_any_other_is_kept():
    assert DEFAULT_API == "dify-chat"
    assert command_of({"api": DEFAULT_API}) == []
    assert command_of({"api": f"  {DEFAULT_API} "}) == []
    for api in ("dify-completion", "dify-workflow", "openai-chat", "openai-completions", "auto"):
        assert command_of({"api": api}) == ["--api", api]


def test_the_command_parses_with_the_run_parser_to_the_forms_values():
    form = {"demo": False, "base_url": "http://gpu1:8000/v1", "api": "openai-chat", "model": "qwen3",
            "model_name": "qwen-run", "key_file": "keys.txt", "param_file": "queries.txt", "threads": "16",
            "ramp_up": "2.5", "duration": "30", "requests": "100",
            "slo": "ttft_p95<800ms\n success>=99% ", "gpu": "local\nssh://ops@gpu1",
            "server_metrics": "http://gpu1:8000/metrics", "headers": "X-Team: llm\nX-Trace: on"}
    args = build_run_parser().parse_args(command_of(form))
    assert args.demo is False
    assert args.base_url == "http://gpu1:8000/v1"
    assert args.api == "openai-chat"
    assert args.model == "qwen3" and args.model_name == "qwen-run"
    assert args.api_key_file == "keys.txt" and args.api_key is None
    assert args.param_file == "queries.txt"
    assert args.threads == 16 and args.ramp_up == 2.5 and args.duration == 30.0 and args.requests == 100
    assert args.slo == ["ttft_p95<800ms", "success>=99%"]
    assert args.gpu == ["local", "ssh://ops@gpu1"]
    assert args.server_metrics == ["http://gpu1:8000/metrics"]
    assert args.header == ["X-Team: llm", "X-Trace: on"]


def test_a_demo_command_parses_with_the_default_flavour_and_open_loop_rate():
    args = build_run_parser().parse_args(command_of({"demo": True, "api": DEFAULT_API, "rate": "4", "duration": "10",
                                                     "datasets": "a=a.txt:2\nb=b.jsonl"}))
    assert args.demo is True and args.base_url is None
    assert args.api == DEFAULT_API
    assert args.rate == 4.0 and args.duration == 10.0
    assert args.dataset == ["a=a.txt:2", "b=b.jsonl"]


def test_fields_name_every_form_field():
    assert set(FIELDS) == {"demo", "key_env", *(name for name, _ in SINGLE + LINES)}
    assert len(FIELDS) == len(set(FIELDS))


# -- check and field_of: the CLI's own messages, by field --

def test_check_returns_exactly_the_command_of_a_valid_form(demo):
    assert check(demo, {}) == command_of(demo)
    assert check(demo, {}) == ["--demo", "--param-file", demo["param_file"], "--threads", "2", "--duration", "5"]


def test_check_accepts_a_valid_real_target_form_without_sending_anything(queries):
    form = {"base_url": "http://127.0.0.1:9/v1/", "api": "openai-chat", "model": "m", "param_file": queries,
            "threads": "4", "rate": "2", "duration": "10", "slo": "ttft_p95<800ms", "headers": "X-Team: llm"}
    assert check(form, {}) == command_of(form)


def test_check_reads_the_consoles_environment_by_default(demo, monkeypatch):
    monkeypatch.setenv("SSE_PERF_UI_TEST_KEY", KEY)
    assert check(dict(demo, key_env="SSE_PERF_UI_TEST_KEY")) == command_of(demo)


@pytest.mark.parametrize("changes,field,message", [
    ({"threads": "0"}, "threads", "--threads must be at least 1 (got 0)"),
    ({"threads": "abc"}, "threads", "argument --threads: not a whole number: 'abc'"),
    ({"threads": "1.5"}, "threads", "argument --threads: not a whole number: '1.5'"),
    ({"duration": "-1"}, "duration", "--duration must not be negative (got -1)"),
    ({"ramp_up": "-1"}, "ramp_up", "--ramp-up must not be negative (got -1)"),
    ({"requests": "0"}, "requests", "--requests must be at least 1 (got 0)"),
    ({"rate": "0"}, "rate", "--rate must be greater than 0 requests/s (got 0)"),
    ({"rate": "2", "duration": ""}, "rate", "--rate needs --duration or --requests (an open loop has no natural end)"),
    ({"rate": "2", "ramp_up": "3"}, "ramp_up",
     "--ramp-up applies to closed-loop threads; with --rate use --warmup instead"),
    ({"demo": False, "base_url": "ftp://x"}, "base_url",
     "--base-url must start with http:// or https:// (got 'ftp://x')"),
    ({"demo": False, "base_url": "http://h:99999/v1"}, "base_url", "--base-url has a bad port: 'http://h:99999/v1'"),
    ({"headers": "NoColon"}, "headers", "--header must look like 'Name: value' (got 'NoColon')"),
])
def test_check_names_the_field_with_the_clis_own_message(demo, changes, field, message):
    assert only_error(dict(demo, **changes)) == (field, message)


def test_an_unknown_flavour_is_refused_on_api_by_the_parser(demo):
    field, message = only_error(dict(demo, api="nope"))
    assert field == "api"
    assert message.startswith("argument --api: invalid choice: 'nope'")
    assert "\n" not in message


def test_a_missing_param_file_is_refused_on_param_file(demo, tmp_path):
    missing = tmp_path / "no-such.txt"
    assert only_error(dict(demo, param_file=str(missing))) == ("param_file", f"--param-file not found: {missing}")


def test_an_empty_param_file_is_refused_on_param_file(demo, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert only_error(dict(demo, param_file=str(empty))) == ("param_file", f"--param-file has no queries: {empty}")


def test_a_folder_or_bad_jsonl_as_param_file_is_refused_on_param_file(demo, tmp_path):
    assert only_error(dict(demo, param_file=str(tmp_path))) == (
        "param_file", f"--param-file is a folder, not a file: {tmp_path}")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"x": 1}\n', encoding="utf-8")
    assert only_error(dict(demo, param_file=str(bad))) == (
        "param_file", f'--param-file {bad} line 1: needs a non-empty string field "query"')


def test_a_missing_key_file_is_refused_on_key_file(demo, tmp_path):
    missing = tmp_path / "keys.txt"
    assert only_error(dict(demo, key_file=str(missing))) == ("key_file", f"--api-key-file not found: {missing}")


def test_an_empty_key_file_is_refused_on_key_file(demo, tmp_path):
    empty = tmp_path / "keys.txt"
    empty.write_text("\n", encoding="utf-8")
    assert only_error(dict(demo, key_file=str(empty))) == ("key_file", f"--api-key-file has no keys: {empty}")


def test_a_missing_dataset_file_is_refused_on_datasets(demo):
    form = dict(demo, param_file="", datasets="a=/no/such.txt")
    assert only_error(form) == ("datasets", "--dataset a not found: /no/such.txt")


@pytest.mark.parametrize("datasets,message", [
    ("garbage", "--dataset 'garbage': expected NAME=PATH[:WEIGHT] (no '=')"),
    ("a={q}\na={q}", "--dataset a is given more than once"),
    ("a={q}:0", "--dataset 'a={q}:0': weight must be greater than 0, not 0"),
])
def test_bad_dataset_lines_are_refused_on_datasets(demo, queries, datasets, message):
    form = dict(demo, param_file="", datasets=datasets.format(q=queries))
    assert only_error(form) == ("datasets", message.format(q=queries))


def test_datasets_and_a_param_file_together_are_refused_on_datasets(demo, queries):
    assert only_error(dict(demo, datasets=f"a={queries}")) == (
        "datasets", "--dataset and --param-file cannot be combined: list the file as a --dataset")


def test_datasets_alone_pass_check(demo, queries):
    form = dict(demo, param_file="", datasets=f"a={queries}:2\nb={queries}")
    assert check(form, {}) == command_of(form)


def test_a_bad_slo_is_refused_on_slo(demo):
    """`sse-perf --slo 'ttft<'` exits 2 before anything is sent (prepare_run parses the SLOs first),
    so the form's check must say so on the slo field, not pass it to fail at Start."""
    assert only_error(dict(demo, slo="ttft<")) == ("slo", "--slo: 'ttft<' needs a value after '<'")


def test_field_of_maps_the_slo_parsers_own_message_to_slo():
    from sse_perf_tool.slo import parse_slos

    with pytest.raises(ConfigError) as caught:
        parse_slos("ttft<")
    assert field_of(str(caught.value)) == "slo"


def _cli_message(argv: list) -> str:
    with pytest.raises(ConfigError) as caught:
        config_from_args(build_run_parser().parse_args(argv), {})
    return str(caught.value)


def test_field_of_maps_the_clis_key_and_demo_conflicts_to_the_forms_fields(tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("k1\n", encoding="utf-8")
    key_conflict = _cli_message(["--api-key", "app-x", "--api-key-file", str(keys)])
    assert key_conflict.startswith("--api-key and --api-key-file")
    assert field_of(key_conflict) == "key_file"
    assert field_of(_cli_message(["--api-key", " "])) == "key_file"
    demo_conflict = _cli_message(["--demo", "--base-url", "http://h/v1"])
    assert demo_conflict.startswith("--demo and --base-url")
    assert field_of(demo_conflict) == "demo"
    assert field_of(_cli_message(["--query", "q", "--param-file", "f.txt"])) == "param_file"
    assert field_of(_cli_message(["--query", "q", "--dataset", "a=f.txt"])) == "param_file"


def test_field_of_takes_the_first_option_the_form_sets():
    assert field_of("--threads and --sweep-threads cannot be combined") == "threads"
    assert field_of("--warmup must not be negative, see --duration") == "duration"  # --warmup is not on the form
    assert field_of("argument --threads: not a whole number: 'x'") == "threads"
    assert field_of("--header X-A: its value has a control character") == "headers"
    assert field_of("--dataset a not found: /x") == "datasets"


def test_field_of_is_empty_when_no_form_option_is_named():
    assert field_of("a sweep needs a duration") == ""
    assert field_of("--warmup must not be negative (got -1)") == ""
    assert field_of("") == ""


def test_check_messages_are_one_line(demo):
    for changes in ({"threads": "abc"}, {"api": "nope"}, {"duration": "-1"}, {"headers": "bad"}):
        (message,) = errors_of(dict(demo, **changes)).values()
        assert "\n" not in message and "usage:" not in message


# -- the key from an environment variable --

def test_a_set_key_env_passes_check_and_becomes_the_runs_key(demo):
    environ = {"MY_LLM_KEY": KEY, "PATH": "/usr/bin"}
    form = dict(demo, key_env="MY_LLM_KEY")
    assert check(form, environ) == command_of(demo)
    env = _key_env(form, environ)
    assert env["SSE_PERF_API_KEY"] == KEY
    assert env["PATH"] == "/usr/bin" and env["PYTHONUNBUFFERED"] == "1"
    assert _key_env(dict(form, key_env="  MY_LLM_KEY "), environ)["SSE_PERF_API_KEY"] == KEY


def test_the_consoles_own_key_is_never_passed_on_when_the_form_names_none(demo, tmp_path):
    environ = {"SSE_PERF_API_KEY": KEY, "HOME": "/home/x"}
    env = _key_env(demo, environ)
    assert "SSE_PERF_API_KEY" not in env and env["HOME"] == "/home/x"
    assert KEY not in env.values()
    assert environ["SSE_PERF_API_KEY"] == KEY  # the console's environment is left as it was
    keys = tmp_path / "keys.txt"
    keys.write_text("app-fromthefile\n", encoding="utf-8")
    with_file = dict(demo, key_file=str(keys))
    assert "SSE_PERF_API_KEY" not in _key_env(with_file, environ)
    assert check(with_file, environ) == command_of(with_file)  # no --api-key/--api-key-file conflict


def test_a_key_env_naming_the_consoles_own_variable_passes_it_on(demo):
    environ = {"SSE_PERF_API_KEY": KEY}
    assert _key_env(dict(demo, key_env="SSE_PERF_API_KEY"), environ)["SSE_PERF_API_KEY"] == KEY


def test_a_key_env_that_is_not_set_is_refused_on_key_env(demo):
    for environ in ({}, {"MY_LLM_KEY": ""}):
        assert only_error(dict(demo, key_env="MY_LLM_KEY"), environ) == (
            "key_env", "the environment variable MY_LLM_KEY is not set where sse-perf ui runs")


@pytest.mark.parametrize("name", ["1BAD", "A-B", "A B", "$KEY", "KEY="])
def test_a_key_env_that_is_no_variable_name_is_refused_on_key_env(demo, name):
    assert only_error(dict(demo, key_env=name), {name: KEY}) == (
        "key_env", f"{name!r} is not an environment variable name")


def test_key_env_together_with_a_key_file_is_refused_on_key_env(demo, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("k1\n", encoding="utf-8")
    assert only_error(dict(demo, key_env="MY_LLM_KEY", key_file=str(keys)), {"MY_LLM_KEY": KEY}) == (
        "key_env", "give the key file or the environment variable, not both")


def test_a_key_env_set_to_blanks_is_refused_on_key_env(demo):
    """The variable the form names holds only spaces: the form's key_env is to blame (the user gave
    no --api-key and no key file)."""
    field, message = only_error(dict(demo, key_env="MY_LLM_KEY"), {"MY_LLM_KEY": "   "})
    assert field == "key_env", (field, message)


# -- no key value on a command line --

def test_no_key_value_reaches_the_command_or_checks_argv(demo, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{KEY}\n", encoding="utf-8")
    by_file = dict(demo, key_file=str(keys))
    by_env = dict(demo, key_env="MY_LLM_KEY")
    environ = {"MY_LLM_KEY": KEY + "env", "SSE_PERF_API_KEY": KEY + "console"}
    for form in (by_file, by_env):
        for argv in (command_of(form), check(form, environ)):
            assert not any(KEY in arg for arg in argv), argv
            assert "--api-key" not in argv
    assert check(by_file, environ)[check(by_file, environ).index("--api-key-file") + 1] == str(keys)
    assert "MY_LLM_KEY" not in check(by_env, environ)  # the variable's name is for the run's environment only


def test_the_form_has_no_key_field_at_all():
    assert not any(name in ("api_key", "key") for name in FIELDS)
    assert "--api-key" not in dict(SINGLE + LINES).values()
    assert command_of({"demo": True, "api_key": KEY, "key": KEY}) == ["--demo"]  # unknown fields are ignored


def test_a_credential_header_in_a_new_run_form_is_refused_on_headers(demo):
    """An API key is never in the form: a credential header would put one on the command line the
    console shows and starts, as check_target refuses to keep one in a target."""
    field, message = only_error(dict(demo, headers=f"Authorization: Bearer {KEY}"))
    assert field == "headers"
    assert KEY not in message


# -- check_target: a target to save --

def test_a_valid_target_is_returned_normalised():
    target = check_target({"name": "  gpu1 vllm ", "base_url": " http://gpu1:8000/v1/ ", "api": "openai-chat",
                           "model": " qwen3 ", "key_file": "", "key_env": "  ",
                           "headers": "  X-Team: llm \n\n   \nX-Trace: on\r\n"})
    assert target == {"name": "gpu1 vllm", "base_url": "http://gpu1:8000/v1", "api": "openai-chat", "model": "qwen3",
                      "key_file": None, "key_env": None, "headers": ["X-Team: llm", "X-Trace: on"]}


def test_a_target_with_only_name_and_url_has_none_for_every_optional_field():
    target = check_target({"name": "t", "base_url": "https://llm.example/v1///"})
    assert target == {"name": "t", "base_url": "https://llm.example/v1", "api": None, "model": None,
                      "key_file": None, "key_env": None, "headers": []}


def test_a_target_keeps_where_the_key_is_read_from():
    target = check_target({"name": "t", "base_url": "http://h/v1", "key_file": " keys/prod.txt "})
    assert target["key_file"] == "keys/prod.txt" and target["key_env"] is None
    target = check_target({"name": "t", "base_url": "http://h/v1", "key_env": " PROD_KEY "})
    assert target["key_env"] == "PROD_KEY" and target["key_file"] is None


def test_a_target_with_a_bad_or_a_second_key_source_is_refused_on_key_env():
    """A target the New run form would refuse is refused when it is saved."""
    assert "not an environment variable name" in _target_errors(key_env="1BAD")["key_env"]
    assert _target_errors(key_env="PROD_KEY", key_file="keys.txt") == {
        "key_env": "give the key file or the environment variable, not both"}


def _target_errors(**changes) -> dict:
    data = dict({"name": "t", "base_url": "http://h/v1"}, **changes)
    with pytest.raises(FormErrors) as caught:
        check_target(data)
    return caught.value.errors


def test_a_target_without_a_name_is_refused_on_name():
    assert _target_errors(name="") == {"name": "a target needs a name"}
    assert _target_errors(name="   ") == {"name": "a target needs a name"}


@pytest.mark.parametrize("url,message", [
    ("ftp://h/v1", "--base-url must start with http:// or https:// (got 'ftp://h/v1')"),
    ("", "--base-url must start with http:// or https:// (got '')"),
    ("http:///v1", "--base-url has no host: 'http:///v1'"),
    ("http://h:99999/v1", "--base-url has a bad port: 'http://h:99999/v1'"),
])
def test_a_target_with_a_bad_url_is_refused_on_base_url(url, message):
    assert _target_errors(base_url=url) == {"base_url": message}


def test_a_target_with_an_unknown_flavour_is_refused_on_api():
    errors = _target_errors(api="nope")
    assert list(errors) == ["api"]
    assert errors["api"].startswith("the flavour must be one of dify-chat")
    assert "openai-chat" in errors["api"]


def test_a_malformed_header_line_is_refused_on_headers():
    assert _target_errors(headers="X-Team: llm\nno colon here") == {
        "headers": "--header must look like 'Name: value' (got 'no colon here')"}


@pytest.mark.parametrize("line", ["Authorization: Bearer x", "X-Api-Key: k", "X-Auth-Token: t", "Cookie: s=1",
                                  "X-Client-Secret: s", "X-Password: p", "api-key: k", "X-Credential: c",
                                  f"Authorization: Bearer {KEY}", f"X-Api-Key: {KEY}"])
def test_a_credential_header_is_refused_on_headers(line):
    errors = _target_errors(headers=f"X-Team: llm\n{line}")
    assert list(errors) == ["headers"]
    message = errors["headers"]
    name = line.partition(":")[0]
    assert message.startswith(f"{name} carries a secret")
    assert "keep it in the key file or the environment variable" in message
    assert KEY not in message  # the value is not echoed


def test_a_harmless_header_is_accepted():
    assert check_target({"name": "t", "base_url": "http://h/v1", "headers": "X-Team: llm"})["headers"] == [
        "X-Team: llm"]


def test_every_bad_target_field_is_reported_at_once():
    errors = _target_errors(name="", base_url="ftp://h", api="nope", headers="Authorization: Bearer x")
    assert set(errors) == {"name", "base_url", "api", "headers"}
