#!/usr/bin/env python3
"""Writes the autoscaler's evaluation traces (seconds,players).

daily.csv: two days of one region. Night ~20 players, a morning rise to
~120, an afternoon plateau, and every evening at 20:00 a daily event that
brings ~90 players within 15 minutes (a recurring step a seasonal forecast
can learn and a reactive scaler cannot see coming), then the fall after
midnight. A few percent of noise (fixed seed), different each day.

spike.csv: six hours. 30 players, then at 2:00 a sudden spike to 200 within
a minute (an unannounced launch, a streamer), back to 30 at 4:00.
"""
import math
import random

random.seed(14)


def day_shape(h):
    """Players at hour h (0-24) of a day, before noise."""
    if h < 2:
        return 230 - (230 - 20) * (h / 2)  # after the event: fall
    if h < 7:
        return 20
    if h < 12:
        return 20 + 100 * (1 - math.cos(math.pi * (h - 7) / 5)) / 2
    if h < 20:
        return 120 + 20 * (h - 12) / 8
    if h < 20.25:
        return 140 + 90 * (h - 20) / 0.25  # the daily event starts
    return 230


with open("daily.csv", "w") as f:
    f.write("seconds,players\n")
    step = 300  # 5 minutes
    for k in range(0, 2 * 86400 // step + 1):
        t = k * step
        h = (t % 86400) / 3600
        p = day_shape(h) * (1 + random.uniform(-0.04, 0.04))
        f.write(f"{t},{max(0, round(p))}\n")

with open("spike.csv", "w") as f:
    f.write("seconds,players\n")
    rows = [(0, 30), (7200, 30), (7260, 200), (14400, 200), (14460, 30), (21600, 30)]
    for t, p in rows:
        f.write(f"{t},{p}\n")
