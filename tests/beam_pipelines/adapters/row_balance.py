"""Row accounting of an AdapterResult, checked in tests: read = kept + rejected."""

import apache_beam as beam
from apache_beam.testing.util import BeamAssertException


def balance(result):
    """(table, read, kept, rejected) per table."""
    rejected = (
        result.rejected
        | "RejectedTable" >> beam.Map(lambda r: (r.table, 1))
        | "CountRejected" >> beam.CombinePerKey(sum)
    )
    return (
        {"read": result.rows_read, "kept": result.rows_kept, "rejected": rejected}
        | "JoinCounts" >> beam.CoGroupByKey()
        | "Balance"
        >> beam.MapTuple(lambda t, g: (t, sum(g["read"]), sum(g["kept"]), sum(g["rejected"])))
    )


def balanced(tables):
    """Returns a matcher: every table in `tables`, and read = kept + rejected in each."""

    def match(actual):
        if sorted(t for t, *_ in actual) != sorted(tables):
            raise BeamAssertException(f"tables {actual} != {tables}")
        for table, read, kept, rejected in actual:
            if read != kept + rejected:
                raise BeamAssertException(f"{table}: read {read} != {kept} kept + {rejected} rej")

    return match
