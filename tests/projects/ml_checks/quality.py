"""Custom data checks, called by mlbuild with the whole table and the check's args."""


def all_above(df, column, floor):
    low = df[df[column] <= floor]
    if len(low):
        return f"{len(low)} row(s) with {column} <= {floor}"
    return None
