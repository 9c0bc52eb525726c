"""A plain driver: two slow independent extracts, a merge, a report (prints JSON)."""
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

TOTALS = {}


def fetch_orders(day):
    time.sleep(0.05)
    return [{"id": i, "total": i * 10, "day": day} for i in range(5)]


def fetch_rates():
    time.sleep(0.05)
    return {"EUR": 1.0}


def fetch_customers(
    region,
    limit=3,
):
    # multi-line call below keeps its layout through instrument/undo
    time.sleep(0.02)
    return [f"{region}-{n}" for n in range(limit)]


def merge(orders, rates):
    return [dict(o, eur=o["total"] * rates["EUR"]) for o in orders]


def score(order):
    TOTALS[order["id"]] = order["eur"]


def report(rows, customers):
    return {"rows": len(rows), "eur": sum(r["eur"] for r in rows), "customers": customers}


def main(day):
    orders = fetch_orders(day)
    rates = fetch_rates()  # a comment that must survive
    customers = fetch_customers(
        "eu",
        limit=2,
    )
    rows = merge(orders, rates)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for row in rows:
            pool.submit(score, row)
    return report(rows, customers)


if __name__ == "__main__":
    result = main(sys.argv[1] if len(sys.argv) > 1 else "2026-12-01")
    print(json.dumps({"result": result, "totals": sorted(TOTALS.items())}, sort_keys=True))
