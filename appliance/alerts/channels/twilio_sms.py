"""Owns the Twilio SMS channel, built on the official twilio client."""

from __future__ import annotations

from typing import Any

from ...config import TwilioConfig
from ..message import AlertMessage, ChannelError, number_key, recipients_failed
from ..render import sms_text

TWILIO_API = "https://api.twilio.com"


def _http_client(timeout_s: float, api_base: str | None) -> Any:
    # Twilio's documented way to reach another host is a custom HTTP client that rewrites the URL
    # (twilio.com/docs/libraries/python/custom-http-clients-python); the client stays official.
    from twilio.http.http_client import TwilioHttpClient

    class _RebasedHttpClient(TwilioHttpClient):
        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if api_base and url.startswith(TWILIO_API):
                url = api_base.rstrip("/") + url[len(TWILIO_API) :]
            return super().request(method, url, *args, **kwargs)

    return _RebasedHttpClient(timeout=timeout_s, max_retries=0)


class TwilioChannel:
    """Sends the alert's SMS text to every configured number through Twilio's Messages API."""

    name = "twilio"

    def __init__(self, config: TwilioConfig, token: str) -> None:
        from twilio.rest import Client

        self.config = config
        self.client = Client(
            config.account_sid,
            token,
            http_client=_http_client(config.timeout_s, config.api_base),
        )
        self.last_sids: list[str] = []

    def send(self, message: AlertMessage) -> None:
        from twilio.base.exceptions import TwilioRestException

        c = self.config
        body = sms_text(message)
        numbers = c.recipients(message.kind)
        if not numbers:
            error = f"alerts.twilio has no recipient for {message.kind}"
            raise ChannelError(error, transient=False)
        sids: list[str] = []
        reached: list[str] = []
        failures: list[ChannelError] = []
        # every number is tried: one invalid number must not keep the alert from the others
        for to in numbers:
            if number_key(to) in message.skip_recipients:
                continue  # reached by an earlier attempt of this delivery
            kwargs: dict[str, Any] = {"to": to, "body": body}
            if c.messaging_service_sid:
                kwargs["messaging_service_sid"] = c.messaging_service_sid
            else:
                kwargs["from_"] = c.from_
            try:
                created = self.client.messages.create(**kwargs)
            except TwilioRestException as exc:
                transient = exc.status >= 500 or exc.status in (408, 429)
                error = f"twilio HTTP {exc.status} code={exc.code} to={to}: {exc.msg}"
                failures.append(ChannelError(error, transient=transient))
                if exc.status in (401, 403):
                    break  # the account, not this number: the next would be refused alike
                continue
            except Exception as exc:  # requests' Timeout/ConnectionError, TwilioException...
                # Twilio unreachable: each further number would wait out the same timeout
                error = f"twilio request failed to={to}: {type(exc).__name__}: {exc}"
                failures.append(ChannelError(error))
                break
            sids.append(str(created.sid))
            reached.append(number_key(to))
        self.last_sids = sids
        if failures:
            raise recipients_failed(failures, tuple(reached))

    def close(self) -> None:
        session = getattr(self.client.http_client, "session", None)
        if session is not None:
            session.close()
