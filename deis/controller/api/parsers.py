"""The JSON body parser of every endpoint (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES): DRF's, plus
what the platform cannot store or pass on answered 400 instead of failing later with a 500 -
nesting deeper than MAX_JSON_DEPTH, lone surrogates ("\\ud800") and NUL characters, in keys or
values (deis.rules.json_problem)."""

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from deis import rules


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested more than {settings.MAX_JSON_DEPTH} levels deep.")
        problem = rules.json_problem(data, settings.MAX_JSON_DEPTH)
        if problem:
            raise ParseError(f"JSON parse error - {problem}")
        return data
