"""The one preflight every kind's first task runs: refuse before asking Moodle, then name what the service lacks."""

from __future__ import annotations

import pytest

from moodle_provider.exceptions import MoodleFunctionUnavailableError
from moodle_provider.functions import SITE_INFO, required_functions
from sync_common.preflight import IntegrationDisabledError, preflight


class Site:
    """A hook whose site offers ``functions``; counts what it was asked."""

    def __init__(self, functions):
        self.functions, self.asked = list(functions), 0

    def get_site_info(self):
        self.asked += 1
        return {"sitename": "Lab", "release": "4.5.6", "functions": [{"name": name} for name in self.functions]}


def test_a_disabled_integration_is_refused_before_moodle_is_asked():
    site = Site(required_functions(["users"]))
    with pytest.raises(IntegrationDisabledError, match="disabled in its file; owner: X"):
        preflight(site, required_functions(["users"]), disabled="disabled in its file; owner: X")
    assert site.asked == 0


def test_the_functions_the_service_lacks_are_named_in_order():
    site = Site([SITE_INFO, "core_course_get_courses"])
    with pytest.raises(MoodleFunctionUnavailableError, match="lacks core_course_create_courses, "
                                                             "core_course_delete_courses, core_course_get_categories"):
        preflight(site, [SITE_INFO, "core_course_get_courses", "core_course_get_categories",
                         "core_course_delete_courses", "core_course_create_courses"])


def test_a_site_offering_every_function_passes_with_its_name_and_release():
    needed = required_functions(["people", "classes", "enrolments"])
    assert preflight(Site(needed), needed) == {"site": "Lab", "release": "4.5.6", "functions_checked": len(needed)}
