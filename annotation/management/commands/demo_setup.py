"""Creates the demo admin and labeler (printing fresh passwords) and the demo project.

DEMO_PASSWORD, when set, is every demo user's password instead of a fresh random one, so a script
(bin/smoke-production) can log in as them without reading this command's output.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from annotation import importers, services
from annotation.models import Membership, Project

DEMO_PROMPTS = Path(settings.BASE_DIR) / "data" / "demo_prompts.jsonl"
GUIDELINES = """\
# How to label

**Demonstrations.** Write the answer you would want a careful, friendly expert to give.
Be correct first, then clear, then brief. Use Markdown where it helps.

**Comparisons.** Pick the response that best follows the instruction and is true and
harmless. Use the strength scale honestly, mark a tie when neither is better, and flag
factual errors or harmful content. Mark *all bad* when no response is acceptable.

**Skip** a task only when you cannot judge it (unknown language, missing context), and say why.
"""


class Command(BaseCommand):
    help = "Create the demo admin and labeler (prints their passwords) and load the demo project."

    def add_arguments(self, parser):
        parser.add_argument("--prompts", default=str(DEMO_PROMPTS), help="JSONL file of demo prompts")

    def handle(self, *args, prompts, **options):
        users = get_user_model()
        passwords = {}
        with transaction.atomic():
            for username, is_admin in (("demo-admin", True), ("demo-labeler", False)):
                user, _ = users.objects.get_or_create(username=username)
                passwords[username] = os.environ.get("DEMO_PASSWORD") or secrets.token_urlsafe(9)
                user.set_password(passwords[username])
                user.is_staff = user.is_superuser = is_admin
                user.save()
            admin, labeler = users.objects.get(username="demo-admin"), users.objects.get(username="demo-labeler")
            project = Project.objects.filter(slug="demo").first()
            if project is None:
                project = services.project_create(
                    name="Demo: a helpful assistant", slug="demo", guidelines=GUIDELINES, created_by=admin
                )
            services.membership_set(project=project, user=admin, role=Membership.Role.ADMIN)
            services.membership_set(project=project, user=labeler, role=Membership.Role.LABELER)
            with open(prompts, "rb") as handle:
                result = importers.prompts_import(project=project, fileobj=handle, filename=prompts)
        counts = result.as_dict()
        self.stdout.write(
            f"Demo project '{project.name}': {counts['created_prompts']} new prompts, "
            f"{counts['skipped_existing']} already there."
        )
        self.stdout.write(self.style.SUCCESS("Log in at http://127.0.0.1:8000/login/ as"))
        for username, password in passwords.items():
            self.stdout.write(f"  {username:<13} password: {password}")
