from tests.web.conftest import ui  # noqa: F401  # the logged-in browser-like client of the UI tests
