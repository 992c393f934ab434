"""The new-run form's memory estimate follows the fields, and a chosen preset fills in its values (Chromium)."""

import pytest

from annotation.models import Membership
from tests.browser import launch_browser, login
from tests.factories import ProjectFactory, member


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_estimate_follows_the_preset_and_the_fields(live_server, tiny_base_model):
    project = ProjectFactory(name="Sizes")
    member(project, Membership.Role.ENGINEER, username="sizer")
    summary = "#memory-estimate [data-role=memory-summary]"
    # The live server runs in this process: size the model once, as a web process does on its first estimate,
    # so the page's first answer is not the import of torch (seconds on a busy machine).
    from training.pipelines.presets import model_shape
    from training.registry import model_location

    model_shape(model_location(tiny_base_model))
    with launch_browser() as browser:
        page = browser.new_page()
        login(page, live_server.url, "sizer", "pass-1234")
        page.goto(f"{live_server.url}/training/runs/new/?project={project.pk}&base_model={tiny_base_model.pk}")
        page.wait_for_function("() => document.querySelector('#memory-estimate [data-role=memory-summary]')"
                               ".textContent.includes('GiB per GPU')")
        first = page.text_content(summary)
        assert "full fine-tuning" in first and "fits a 24 GB GPU" in first
        page.select_option("#id_config-preset", "auto")
        page.wait_for_function("() => document.querySelector('#memory-estimate [data-role=memory-summary]')"
                               ".textContent.includes('LoRA')")
        # auto read the model's size (the 0.5b preset) and wrote its values into the fields.
        assert page.input_value("#id_config-lora_r") == "16"
        assert page.input_value("#id_config-gradient_accumulation_steps") == "4"
        # A field changed afterwards wins, and the estimate follows it (LoRA is under Advanced).
        page.click("details.config-section--advanced > summary")
        page.fill("#id_config-lora_r", "0")
        page.wait_for_function("() => document.querySelector('#memory-estimate [data-role=memory-summary]')"
                               ".textContent.includes('full fine-tuning')")
        page.fill("#id_config-batch_size", "0")
        page.wait_for_function("() => document.querySelector('#memory-estimate [data-role=memory-summary]')"
                               ".textContent.includes('batch_size')")
