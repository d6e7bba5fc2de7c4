"""Sales report helpers."""

import pandas as pd


def monthly_totals(orders):
    frame = pd.DataFrame(orders)
    frame["month"] = pd.to_datetime(frame["created_at"]).dt.to_period("M")
    return frame.groupby("month")["price_cents"].sum()
