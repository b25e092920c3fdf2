"""Hydra's command-line mistakes as one line a user can act on (used by trainlab.app.precheck).

Hydra reports an unparsable override with its grammar's words ("LexerNoViableAltException",
"no viable alternative at input"), for the whole command line at once, and a bad flag with its
usage text. Here the one override at fault is named, and the usual causes are said plainly: no
'=', text outside Hydra's unquoted ASCII (CJK, accented letters, look-alike full-width digits,
invisible characters), values that need quotes.
"""
from hydra.core.override_parser.overrides_parser import OverridesParser

from trainlab.errors import ConfigError


def parse_error(overrides: list[str], err: Exception) -> ConfigError:
    """Hydra's parse error, told about the one override it is in, in words a user can act on."""
    parser = OverridesParser.create()
    for raw in overrides:
        try:
            parser.parse_overrides([raw])
        except Exception as one:
            return ConfigError("override", raw, _why_unparsable(raw, one))
    return ConfigError("override", " ".join(overrides), str(err).splitlines()[0])


def _why_unparsable(raw: str, err: Exception) -> str:
    import unicodedata

    key, equals, value = raw.partition("=")
    if not equals:
        return "key=value or group=option (there is no '='; keys are not --flags: e.g. trainer.epochs=3)"
    odd = next((c for c in raw if ord(c) > 127 or not c.isprintable()), None)
    if odd is not None:
        name = f"{unicodedata.name(odd, 'a character')} (U+{ord(odd):04X})"
        if not odd.isprintable() or unicodedata.category(odd) in ("Cf", "Zs", "Zl", "Zp"):
            return f"it holds an invisible character, {name}: type it again"
        plain = unicodedata.normalize("NFKC", odd)
        if plain != odd and plain.isascii():
            return f"it holds {name}, which looks like {plain!r}: type it in plain ASCII"
        return (f"Hydra reads an unquoted value in ASCII letters, digits and _-+./$%*@?| only ({name} is not); "
                f"quote other text: {key}='{value}' (in a shell: \"{key}='{value}'\")")
    text = str(err).splitlines()[0].removeprefix("LexerNoViableAltException: ")
    if text.strip() == raw.strip():  # Hydra only echoes the override back
        return ("key=value with a dotted key (e.g. trainer.epochs=3); quote a value holding spaces, "
                f"~ or ,[]{{}}()='\" as {key}='{value}'")
    return text


def check_flags(flags: list[str], info_flags: set[str]) -> None:
    """Hydra's own flags (--cfg job, -m, ...), parsed as Hydra will: a mistake is one line, not its usage."""
    from hydra._internal.utils import get_args_parser

    if (info_flags | {"--version"}) & set(flags):  # Hydra answers these itself (and --version exits)
        return
    parser = get_args_parser()

    def refuse(message: str):
        raise ConfigError("flags", " ".join(flags), message.replace("argument ", "") + " (trainlab train --help)")

    parser.error = refuse
    parser.parse_args(flags)
