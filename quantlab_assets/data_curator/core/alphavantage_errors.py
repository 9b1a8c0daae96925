"""Alpha Vantage failures: the typed errors, and the redaction every message goes through.

Alpha Vantage answers almost every failure with HTTP 200 and free text; ``alphavantage_reply``
maps those texts, and ``alphavantage_http`` the network failures, onto the classes here, so the
provider can tell what to retry and what stops a batch. The API key travels in the query string
of each request: ``redact`` takes it out of every message built from a reply or an exception,
and ``install_urllib3_redaction`` out of urllib3's debug log lines (which print request URLs).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote, quote_plus

from quantlab_assets.data_curator.core.providers import ProviderError


class AlphaVantageError(ProviderError):
    """Base class for every Alpha Vantage failure; messages never contain the API key."""


class AlphaVantageInvalidRequest(AlphaVantageError):
    """The service rejected this call (unknown symbol, bad parameters, HTTP 4xx). Not retried."""


class AlphaVantageInvalidApiKey(AlphaVantageInvalidRequest):
    """The key is missing, invalid or the public demo key; every further call would fail too."""


class AlphaVantageThrottled(AlphaVantageError):
    """Too many requests in a short window (per second / per minute, or HTTP 429). Retried."""


class AlphaVantageDailyQuotaExceeded(AlphaVantageError):
    """The key's daily request allowance is used up; nothing succeeds until it resets."""


class AlphaVantagePremiumRequired(AlphaVantageError):
    """The endpoint or parameter (for example ``outputsize=full``) needs a premium plan."""


class AlphaVantageMalformedResponse(AlphaVantageError):
    """The body is not the JSON shape Alpha Vantage documents. Not retried."""


class AlphaVantageTransientError(AlphaVantageError):
    """Timeout, dropped connection, truncated body or HTTP 5xx. Retried."""


class AlphaVantageKeptThrottling(AlphaVantageError):
    """Throttled replies kept coming for the whole allowed time: the run stops and keeps what it has."""


class IngestBudgetExhausted(AlphaVantageError):
    """The ingest's time budget is used up; the run stops and keeps what it has."""


# Only these clear up by waiting; everything else is final for the symbol.
RETRYABLE = (AlphaVantageThrottled, AlphaVantageTransientError)

APIKEY_PARAM = re.compile(r"(apikey=)[^&\s'\"()]*", re.I)


def redact(text: str, api_key: str) -> str:
    """``text`` without the key (as given, form-encoded or percent-encoded) or any ``apikey=`` value."""
    for form in {api_key, quote_plus(api_key), quote(api_key, safe="")}:
        text = text.replace(form, "***")
    return APIKEY_PARAM.sub(r"\1***", text)


class RedactApiKeyFilter(logging.Filter):
    """Masks ``apikey=...`` in urllib3 debug lines, which print each request URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "apikey=" in message.lower():
            record.msg, record.args = APIKEY_PARAM.sub(r"\1***", message), None
        return True


def install_urllib3_redaction() -> None:
    pool_logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, RedactApiKeyFilter) for f in pool_logger.filters):
        pool_logger.addFilter(RedactApiKeyFilter())
