"""Content negotiation that remembers its answers.

DRF parses the Accept header and every renderer's media type on each request: on the labeler
API's next and submit that was 6% of the workers' time (py-spy). The choice depends only on the
header, the requested format and the view's renderer classes, so it is made once per combination
and reused. Refusals (406, an unknown format) are not remembered: they raise every time.
"""

from rest_framework.negotiation import DefaultContentNegotiation

MAX_REMEMBERED = 1000  # distinct Accept headers are few; a client sending random ones gets no cache


class CachedContentNegotiation(DefaultContentNegotiation):
    _choices: dict[tuple, tuple[int, str]] = {}

    def select_renderer(self, request, renderers, format_suffix=None):
        override = self.settings.URL_FORMAT_OVERRIDE
        requested = format_suffix or (request.query_params.get(override) if override else None)
        key = (request.META.get("HTTP_ACCEPT", ""), requested, tuple(type(r) for r in renderers))
        choice = self._choices.get(key)
        if choice is None:
            renderer, media_type = super().select_renderer(request, renderers, format_suffix)
            choice = (renderers.index(renderer), media_type)
            if len(self._choices) < MAX_REMEMBERED:
                self._choices[key] = choice
        return renderers[choice[0]], choice[1]
