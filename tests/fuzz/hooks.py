"""Points the fuzzer's generated requests at things that exist, and keeps
the rules the document states in words where JSON Schema cannot say them,
so that what is tested is the document's word on each field:

- every `event_id` (body) and `eventId` (path) names the event the test
  created;
- every phone is a number that exists, a new one each time (the document
  gives a phone's form, not whether its country code is real nor that it
  is another guest's; both are tested in guests.rs);
- `cursor` and `since` are left out: they are tokens the API hands out;
- a CSV import is a CSV file with a header row (its lines are the JSON
  import's guests, tested in guests.rs);
- a template's `text` and `content_variables` and an event's
  `confirmations` have no braces or backslashes: they are tinytemplate templates, whose grammar the
  description gives (tested in message_templates.rs);
- a template a send or an event names is one that exists (`default`);
- an event's `rsvp_deadline` is not after its start; a template's or a
  guest's PUT names no other id than its path's.
"""

import itertools
import re

import schemathesis

EVENT = "fuzz-event"
_numbers = itertools.count(1)


def _phone():
    """A real Brazilian mobile number, a new one each time, as people write it."""
    n = next(_numbers)
    return f"+55 11 9{n // 10000 % 10000:04d}-{n % 10000:04d}"


def _pin(value):
    """The value with every event id and phone replaced, recursively."""
    if isinstance(value, dict):
        for key in list(value):
            if key == "event_id" and isinstance(value[key], str):
                value[key] = EVENT
            elif key == "phone" and isinstance(value[key], str):
                value[key] = _phone()
            else:
                _pin(value[key])
    elif isinstance(value, list):
        for item in value:
            _pin(item)
    return value


def _plain(text):
    """Template text without the grammar's braces and backslashes."""
    return re.sub(r"[{}\\]", "", text).strip() or "Hi"


@schemathesis.hook
def before_call(ctx, case, kwargs):
    body = case.body
    if isinstance(body, (dict, list)):
        _pin(body)
    if isinstance(body, dict):
        if isinstance(body.get("text"), str):
            body["text"] = _plain(body["text"])
        for templates in ("confirmations", "content_variables"):
            if isinstance(body.get(templates), dict):
                for key, words in body[templates].items():
                    if isinstance(words, str):
                        body[templates][key] = _plain(words)
        # A template a send or an event names must exist (400 otherwise, as documented).
        if case.method != "POST" or "templates" not in case.path:
            for name in ("template_id", "default_template_id", "reminder_template_id"):
                if isinstance(body.get(name), str) and body[name].strip():
                    body[name] = "default"
        starts, deadline = body.get("starts_at"), body.get("rsvp_deadline")
        if isinstance(starts, str) and isinstance(deadline, str):
            body["rsvp_deadline"] = starts
    if isinstance(body, str) and "guests" in case.path and case.method == "POST":
        case.body = f"name,phone\nFuzz Guest,{_phone()}\n"
    params = case.path_parameters or {}
    if "eventId" in params:
        params["eventId"] = EVENT
    if "phone" in params:
        params["phone"] = _phone().replace(" ", "").replace("-", "")
    # A PUT names its thing by the path; an id in the body may only repeat it.
    if case.method == "PUT" and isinstance(body, dict):
        for path_name, body_name in (("templateId", "template_id"), ("guestId", "guest_id")):
            if path_name in params and isinstance(body.get(body_name), str) and body[body_name].strip():
                body[body_name] = params[path_name]
    if case.query:
        for token in ("cursor", "since"):
            case.query.pop(token, None)
