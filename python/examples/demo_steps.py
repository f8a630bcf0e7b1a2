"""The demo's server steps (a port of demo/steps.ts): each reads what the person saved, and writes its result back."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import datetime, timezone

from workflow_session import JsonValue, StepContext, StepError, StepResult

#: What the demo shop sells; prices in cents so sums stay exact (demo/catalog.ts).
CATALOG = {"milk": 120, "bread": 250, "eggs": 310, "coffee": 690, "apples": 280}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _iso_now() -> str:
    """Now as the TypeScript demo writes times: ISO 8601 UTC with milliseconds."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def report_ms() -> float:
    """How long the report takes: 20 s, or ``DEMO_REPORT_MS`` (the tests make it shorter)."""
    return float(os.environ.get("DEMO_REPORT_MS", "20000"))


async def report(ctx: StepContext) -> StepResult:
    """A long step, as an LLM call or a data job is: it reports progress, stops when cancelled,
    and its result is merged when it ends, even if the page that started it was closed.

    A cancel (or the run's time limit, or a shutdown) cancels its task at the sleep below; it
    checks ``ctx.cancelled`` too, as the TypeScript demo checks its signal.
    """
    parts = 10
    pause = report_ms() / parts / 1000
    for done in range(parts):
        ctx.progress({"done": done, "of": parts})
        await asyncio.sleep(pause)
        if ctx.cancelled.is_set():
            return StepResult()
    fields = sum(1 for name in ctx.variables if not name.endswith(":at"))
    message = f"Report ready: {fields} saved fields looked at"
    return StepResult(output={"message": message}, variables={"report": {"message": message, "at": _iso_now()}})


def _text(value: JsonValue) -> str:
    return value.strip() if isinstance(value, str) else ""


def register(ctx: StepContext) -> StepResult:
    signup = ctx.workflow("signup")
    email = _text(signup.get("email"))
    if not EMAIL.fullmatch(email):
        raise StepError("Enter a valid email address first")
    name = _text(signup.get("name")) or email
    signup.set("registeredEmail", email)
    signup.set_step("registered")
    return StepResult(output={"message": f"Welcome, {name}! Your account is ready."})


def _quantity(value: JsonValue) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() or value <= 0:
        return None
    return int(value)


def checkout(ctx: StepContext) -> StepResult:
    flow = ctx.workflow("checkout")
    cart = flow.get("cart")
    lines: list[JsonValue] = []
    total = 0
    for line in cart if isinstance(cart, list) else []:
        product = line.get("product") if isinstance(line, dict) else None
        qty = _quantity(line.get("qty")) if isinstance(line, dict) else None
        if isinstance(product, str) and product in CATALOG and qty is not None:
            lines.append({"product": product, "qty": qty, "cents": CATALOG[product] * qty})
            total += CATALOG[product] * qty
    if not lines:
        raise StepError("The cart is empty")
    placed = flow.get("orders")
    orders = placed if isinstance(placed, list) else []
    order: dict[str, JsonValue] = {
        "number": len(orders) + 1,
        "lines": lines,
        "totalCents": total,
        "placedAt": _iso_now(),
    }
    if flow.get("name"):
        order["deliverTo"] = flow.get("name")
    flow.set("orders", [*orders, order])
    flow.set("cart", [])
    flow.set_step("ordered")
    return StepResult(output=order)


demo_steps = {"report": report, "register": register, "checkout": checkout}
