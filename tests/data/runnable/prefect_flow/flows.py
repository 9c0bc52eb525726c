"""A Prefect flow: two pulls, a join, a write (prints JSON)."""
import json
import time

from prefect import flow, task


@task(retries=2)
def pull_spend(day):
    time.sleep(0.02)
    return {"ads": 5, "day": day}


@task
def pull_sessions(day):
    time.sleep(0.02)
    return {"ads": 3}


@task
def attribute(spend, sessions):
    return spend["ads"] + sessions["ads"]


@flow(name="nightly")
def nightly(day):
    spend = pull_spend(day)
    sessions = pull_sessions(day)
    return attribute(spend, sessions)


if __name__ == "__main__":
    print(json.dumps({"attributed": nightly("2026-12-01")}))
