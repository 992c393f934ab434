"""The `<id:...>` path converter: every object id in a URL, parsed once by annotation.ids.as_id.

`<int:...>` takes any run of digits, so /api/tasks/99999999999999999999/ reached a query with a
number no bigint column can hold, and the database answered with an error (a 500). This converter
matches at most 19 digits and refuses (ValueError) anything past MAX_ID, so Django tries the next
pattern and, finding none, answers 404: no object has that id.

Registered when this module is imported; config/urls.py imports it before it includes any URLconf.
"""

from django.urls import register_converter

from annotation.ids import ID_PATTERN, as_id


class IdConverter:
    regex = ID_PATTERN

    def to_python(self, value: str) -> int:
        number = as_id(value)
        if number is None:
            raise ValueError(f"{value!r} is not a database id")
        return number

    def to_url(self, value) -> str:
        number = as_id(value)
        if number is None:
            raise ValueError(f"{value!r} is not a database id")
        return str(number)


register_converter(IdConverter, "id")
