"""A class-based run: steps hand results over through self (prints JSON)."""
import json
import time


class Close:
    def __init__(self):
        self.rows = []
        self.stamp = None

    def collect(self):
        time.sleep(0.02)
        self.rows = [1, 2, 3]

    def lock(self):
        self.stamp = "locked"

    def total(self):
        self.sum = sum(self.rows)

    def run(self):
        self.collect()
        self.lock()
        self.total()
        return {"sum": self.sum, "stamp": self.stamp}


if __name__ == "__main__":
    print(json.dumps(Close().run(), sort_keys=True))
