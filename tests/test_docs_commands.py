"""The commands in the README and docs/ work as written: a shell block runs manage.py through the
virtualenv's Python (a bare `manage.py` is not on the PATH, and the system's Python lacks Django;
inside the Docker image its own Python has everything), and every management command they name exists."""

import re
from pathlib import Path

from django.conf import settings
from django.core.management import get_commands

DOCS = [Path(settings.BASE_DIR) / "README.md", *sorted((Path(settings.BASE_DIR) / "docs").glob("*.md"))]
COMMAND = re.compile(r"(?:^|\s)(?:\S*python3?\s+)?manage\.py\s+([a-z_]+)")


def shell_lines(text: str):
    """Each line of a ```sh block, with the line number in its file."""
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            inside = line.strip() in ("```sh", "```bash", "```shell") if not inside else False
        elif inside:
            yield number, line


def test_shell_blocks_run_manage_py_through_the_virtualenv():
    wrong = []
    for doc in DOCS:
        for number, line in shell_lines(doc.read_text(encoding="utf-8")):
            for match in re.finditer(r"(\S*)\s*manage\.py\b", line):
                runner = match.group(1)
                in_container = runner == "python" and "docker" in line  # the image's own Python
                if runner not in (".venv/bin/python", "$BIN/python", "$(BIN)/python", "$PY") and not in_container:
                    wrong.append(f"{doc.name}:{number}: {line.strip()}")
    assert not wrong, "Run manage.py as .venv/bin/python manage.py:\n" + "\n".join(wrong)


def test_every_management_command_the_docs_name_exists():
    known = set(get_commands())
    named = {}
    for doc in DOCS:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for name in COMMAND.findall(line):
                named.setdefault(name, f"{doc.name}:{number}")
    assert len(named) >= 8  # the README alone names train, generate, simulate, import_prompts, export_project...
    missing = {name: where for name, where in named.items() if name not in known}
    assert not missing, f"The docs name commands that do not exist: {missing}"
