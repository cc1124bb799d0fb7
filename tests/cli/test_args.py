import argparse

import pytest

from vertxnet.cli._args import finite_float, non_negative_int, parse_args, positive_int


def _parser():
    p = argparse.ArgumentParser(prog="tool")
    p.add_argument("--n", type=positive_int, required=True)
    return p


def test_parse_args_returns_the_namespace_or_argparse_exit_status(capsys):
    assert parse_args(_parser(), ["--n", "3"]).n == 3
    assert parse_args(_parser(), ["--n", "0"]) == 2
    assert "expected a positive integer, got '0'" in capsys.readouterr().err
    assert parse_args(_parser(), []) == 2
    assert parse_args(_parser(), ["--help"]) == 0


@pytest.mark.parametrize("convert,text", [(positive_int, "0"), (non_negative_int, "-1"), (finite_float, "nan"), (finite_float, "x")])
def test_argument_types_refuse_bad_values(convert, text):
    with pytest.raises(argparse.ArgumentTypeError):
        convert(text)


def test_decoder_settings_build_decoder_params_and_bad_ones_exit_2(capsys):
    from vertxnet.cli._args import add_decoder_argument, decoder_params
    from vertxnet.core import DecoderParams

    p = argparse.ArgumentParser(prog="tool")
    add_decoder_argument(p)
    args = parse_args(p, ["--decoder", "size_sigma=0.2", "--decoder", "end_hazard=0.1", "--decoder", "size_sigma=0.3"])
    assert decoder_params(args.decoder) == DecoderParams(size_sigma=0.3, end_hazard=0.1)
    assert decoder_params(parse_args(p, []).decoder) is None
    assert parse_args(p, ["--decoder", "size_sigma=-1"]) == 2
    assert "size_sigma" in capsys.readouterr().err
    assert parse_args(p, ["--decoder", "level_area=3"]) == 2  # lists are not NAME=VALUE settings
    assert parse_args(p, ["--decoder", "sigma"]) == 2
