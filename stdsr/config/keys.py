"""The unknown-key check every option section goes through, with a did-you-mean hint: BasicSR silently ignores
keys it does not read, so a typo would train with a default nobody asked for."""
import difflib

from stdsr.errors import OptionError


def _suggest(key, valid):
    close = difflib.get_close_matches(str(key), sorted(str(v) for v in valid), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ''


def check_keys(section, where, valid, prefixes=(), source='', suffixes=()):
    """Raise OptionError for the first key of ``section`` not in ``valid`` (nor with a valid prefix/suffix)."""
    for key in section:
        if key in valid or str(key).startswith(tuple(prefixes)) or str(key).endswith(tuple(suffixes)):
            continue
        hint = _suggest(key, set(valid) | {p + '*' for p in prefixes} | {'*' + s for s in suffixes})
        raise OptionError(f"{source}unknown option '{where}.{key}'{hint}" if where else
                          f"{source}unknown option '{key}'{hint}")
