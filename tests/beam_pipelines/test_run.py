"""The preprocessing CLI end to end: outputs, statistics, bad input, both samplers."""

import dataclasses
import glob
import json
import os

import pytest
import tensorflow as tf
import tensorflow_gnn as tfgnn

from beam_pipelines import config, pipeline, run
from synthetic import generator
from tests.beam_pipelines.sample_reader import pair_edges, parse, read_split_records


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    generator.generate(str(out), users=150, items=60, seed=3)
    return str(out)


def _run(*args):
    return run.main(["--runner", "FnApiRunner", *args])


def _lines(pattern):
    return [line for path in sorted(glob.glob(pattern)) for line in open(path) if line.strip()]


@pytest.fixture(scope="module")
def memory_out(data_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("out") / "memory")
    assert _run("--input", data_dir, "--output", out, "--nested_tasks", "--seed", "5") == 0
    return out


def test_outputs_satisfy_the_contract(memory_out, data_dir):
    stats = json.load(open(os.path.join(memory_out, "stats.json")))
    rows = stats["rows"]["interactions"]
    assert rows["read"] == rows["kept"] + rows["rejected"] and rows["rejected"] == 0
    n_rows = sum(1 for _ in open(os.path.join(data_dir, "interactions.csv"))) - 1
    assert rows["read"] == n_rows
    records = read_split_records(memory_out)
    assert {s: len(r) for s, r in records.items()} == stats["samples"]
    # Every row supervises (one sample) or builds the graphs, never both.
    graph_rows = stats["examples"]["graph"]["rows"]
    assert graph_rows > 0.3 * stats["examples"]["train"]["rows"]
    assert sum(stats["samples"].values()) + graph_rows == n_rows
    assert stats["beam_counters"]["rows/read_interactions"] == n_rows

    schema = tfgnn.read_schema(os.path.join(memory_out, "graph_schema.pbtxt"))
    spec = tfgnn.create_graph_spec_from_schema_pb(schema)
    graph = tfgnn.parse_example(spec, tf.constant(records["train"][:8]))
    assert graph.node_sets["user"].sizes.numpy().tolist() == [[121]] * 8
    layout = json.load(open(os.path.join(memory_out, "layout.json")))
    assert layout["fanouts"] == [10, 5]

    # No graph holds a held-out edge, and no sample holds its own pair's edge.
    graph_edges = {tuple(line.split()) for line in _lines(f"{memory_out}/graphs/bipartite-*")}
    held_out = set()
    for split in ("valid", "test"):
        for record in records[split]:
            sample = parse(record)
            held_out.add((sample["nodes/user.#id"][0], sample["nodes/item.#id"][0]))
    assert graph_edges and held_out and not graph_edges & held_out
    supervised = set()
    for record in records["train"]:
        sample = parse(record)
        supervised.add((sample["nodes/user.#id"][0], sample["nodes/item.#id"][0]))
    assert not graph_edges & supervised  # graph rows and supervising rows are disjoint
    # The vocabulary holds the ids of the graph rows too (they are sampled neighbours).
    vocab = {line.split("\t")[0] for line in _lines(f"{memory_out}/vocab/user-*")}
    assert {u for u, _ in graph_edges} <= vocab
    for split_records in records.values():
        for record in split_records:
            sample = parse(record)
            own = (sample["nodes/user.#id"][0], sample["nodes/item.#id"][0])
            assert own not in pair_edges(sample)
            assert set(pair_edges(sample)) <= graph_edges

    assert stats["graphs"]["G_user_degree"]["edges"] == len(graph_edges)
    assert _lines(f"{memory_out}/features/user-*") and _lines(f"{memory_out}/vocab/item-*")


def test_the_resolved_config_is_written_beside_the_output(memory_out, data_dir):
    with open(os.path.join(memory_out, config.CONFIG_FILE)) as f:
        text = f.read()
    input_config, preprocess_config = config.from_json(text)
    # The defaults, but for the flags given (--nested_tasks, --seed 5).
    assert input_config == config.InputConfig(input=data_dir, nested_tasks=True)
    assert preprocess_config == config.PreprocessConfig(output=memory_out, seed=5)
    # stats.json keeps its config block: the job's settings and four of the input's.
    saved = json.loads(text)
    kept = {f.name for f in dataclasses.fields(config.PreprocessConfig)}
    kept |= {"input", "format", "nested_tasks", "behavior_files"}
    stats = json.load(open(os.path.join(memory_out, "stats.json")))
    assert stats["config"] == {k: saved[k] for k in kept}


def test_join_sampler_writes_the_same_records(memory_out, data_dir, tmp_path):
    out = str(tmp_path / "join")
    code = _run(
        "--input", data_dir, "--output", out, "--nested_tasks", "--seed", "5", "--sampler", "join"
    )
    assert code == 0
    ours, theirs = read_split_records(memory_out), read_split_records(out)
    assert {s: sorted(r) for s, r in ours.items()} == {s: sorted(r) for s, r in theirs.items()}


def test_finished_output_is_kept_unless_overwrite(memory_out, data_dir, capsys):
    assert _run("--input", data_dir, "--output", memory_out) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    # --overwrite with input that cannot be read fails before anything is deleted.
    missing = os.path.join(data_dir, "missing")
    assert _run("--input", missing, "--output", memory_out, "--overwrite") == 2
    assert "no input files" in capsys.readouterr().err
    assert os.path.exists(os.path.join(memory_out, "_SUCCESS"))
    assert read_split_records(memory_out)["train"]


BAD_CSV = """user_id,item_id,timestamp,click,conversion
u1,i1,10,1,0
u1,i2,11,1,1
u2,i1,12,0,0
u2,i2,13
,i3,14,1,0
u3,i1,15,7,0
u3,i2,soon,1,0
u3,i3,16,0,1
"""


def test_bad_rows_go_to_rejected_with_their_reasons(tmp_path):
    (tmp_path / "log.csv").write_text(BAD_CSV)
    out = str(tmp_path / "out")
    # Three rows are too few to divide: with shared graphs each becomes a sample.
    args = ("--input", str(tmp_path / "log.csv"), "--output", out, "--graph_split", "shared")
    assert _run(*args, "--nested_tasks") == 0
    rejected = [json.loads(line) for line in _lines(f"{out}/rejected/*.jsonl")]
    assert sorted(r["reason"] for r in rejected) == sorted(
        ["wrong_column_count", "empty_id", "bad_label", "bad_timestamp", "nested_label_violation"]
    )
    assert all(r["table"] == "interactions" and r["source"] == "log.csv" for r in rejected)
    stats = json.load(open(os.path.join(out, "stats.json")))
    assert stats["rows"]["interactions"] == {"read": 8, "kept": 3, "rejected": 5}
    assert stats["rejected"]["interactions"]["bad_label"] == 1
    assert stats["beam_counters"]["rejected/interactions_bad_label"] == 1
    assert stats["beam_counters"]["rows/kept_interactions"] == 3
    assert sum(stats["samples"].values()) == 3


def test_entirely_bad_input_fails_with_a_clear_error(tmp_path, capsys):
    (tmp_path / "log.csv").write_text("user_id,item_id,click,conversion\n,i1,1,0\nu1,i1,5,0\n")
    out = str(tmp_path / "out")
    assert _run("--input", str(tmp_path / "log.csv"), "--output", out) == 2
    assert "no usable interaction rows: 2 read, all rejected" in capsys.readouterr().err
    assert len(_lines(f"{out}/rejected/*.jsonl")) == 2  # what was read is not lost
    # A failed run is not a finished one: the next run may replace it.
    assert not os.path.exists(os.path.join(out, "_SUCCESS"))
    pipeline.prepare_output(config.PreprocessConfig(output=out), overwrite=False)
    assert not os.path.exists(os.path.join(out, "rejected"))


@pytest.mark.parametrize(
    "text, message",
    [("", "is empty"), ("user_id,item_id,click,conversion\n", "holds no interaction rows")],
)
def test_empty_input_fails_with_a_clear_error(tmp_path, capsys, text, message):
    (tmp_path / "log.csv").write_text(text)
    assert _run("--input", str(tmp_path / "log.csv"), "--output", str(tmp_path / "o")) == 2
    assert message in capsys.readouterr().err


def test_positives_only_log_with_negatives_and_random_split(tmp_path):
    lines = ["user,item,fav,buy"] + [f"u{k % 7},i{3 * k % 37},1,{k % 2}" for k in range(40)]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    out = str(tmp_path / "out")
    code = _run(
        "--input", str(tmp_path / "log.csv"), "--output", out, "--user_col", "user",
        "--item_col", "item", "--tasks", "favorite,purchase", "--label_cols", "fav,buy",
        "--negatives_per_positive", "2", "--negative_sampling", "popularity",
        "--split", "random", "--fanouts", "3,2",
    )  # fmt: skip
    assert code == 0
    stats = json.load(open(os.path.join(out, "stats.json")))
    assert stats["tasks"] == ["favorite", "purchase"]
    assert stats["config"]["split"] == "random" and stats["negatives_short"] == 0
    assert stats["config"]["negative_sampling"] == "popularity"
    assert stats["config"]["graph_split"] == "random"
    rows = sum(e["rows"] for e in stats["examples"].values())
    positives = sum(e["positives_favorite"] for e in stats["examples"].values())
    assert positives == 40 and rows == 40 + 2 * 40
    records = read_split_records(out)
    sample = parse(records["train"][0])
    assert {"context/label_favorite", "context/label_purchase"} <= set(sample)
    assert (
        len(sample["nodes/user.#id"])
        == json.load(open(os.path.join(out, "layout.json")))["node_set_sizes"]["user"]
    )


def test_time_graph_split_keeps_a_pair_labelled_later_out_of_the_graphs(tmp_path):
    # u1 clicked i1 early (a graph row) and again late (a supervising row): the
    # pair is labelled in a sample, so its edge must not be in G.
    lines = ["user_id,item_id,timestamp,click,conversion"]
    lines += [f"u{k % 5},i{k % 7},{k},1,0" for k in range(2, 22)]
    lines += ["u1,i1,1,1,0", "u1,i1,30,1,0"]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    out = str(tmp_path / "out")
    code = _run(
        "--input", str(tmp_path / "log.csv"), "--output", out, "--graph_split", "time",
        "--graph_fraction", "0.4", "--test_fraction", "0", "--valid_fraction", "0",
        "--fanouts", "2",
    )  # fmt: skip
    assert code == 0
    stats = json.load(open(os.path.join(out, "stats.json")))
    assert stats["config"]["graph_split"] == "time" and stats["config"]["graph_fraction"] == 0.4
    # The newest 60% of the 22 rows (13.2, so down to timestamp 9) supervise; 1..8 build graphs.
    assert stats["examples"]["graph"]["rows"] == 8 and stats["examples"]["train"]["rows"] == 14
    graph_edges = {tuple(line.split()) for line in _lines(f"{out}/graphs/bipartite-*")}
    assert graph_edges and ("u1", "i1") not in graph_edges
    assert stats["graphs"]["held_out_edges_removed"] >= 1


def test_no_graph_rows_is_a_clear_error(tmp_path, capsys):
    lines = ["user_id,item_id,timestamp,click,conversion"]
    lines += [f"u{k},i{k},5,1,0" for k in range(10)]  # one timestamp: nothing is older
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    code = _run(
        "--input", str(tmp_path / "log.csv"), "--output", str(tmp_path / "out"),
        "--graph_split", "time", "--test_fraction", "0", "--valid_fraction", "0",
    )  # fmt: skip
    assert code == 2
    assert "no training row is left to build the graphs" in capsys.readouterr().err


def test_graph_edges_any_puts_shown_but_not_clicked_graph_rows_in_g(tmp_path, capsys):
    # Rows 1..8 are the graph rows (time split, fraction 0.4); odd timestamps are not clicked.
    lines = ["user_id,item_id,timestamp,click,conversion"]
    lines += [f"u{k % 5},i{k % 7},{k},{k % 2 == 0:d},0" for k in range(1, 23)]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    edges = {}
    for kind in ("positive", "any"):
        out = str(tmp_path / kind)
        code = _run(
            "--input", str(tmp_path / "log.csv"), "--output", out, "--graph_split", "time",
            "--graph_fraction", "0.4", "--test_fraction", "0", "--valid_fraction", "0",
            "--fanouts", "2", "--graph_edges", kind,
        )  # fmt: skip
        assert code == 0
        assert json.load(open(os.path.join(out, "stats.json")))["config"]["graph_edges"] == kind
        edges[kind] = {tuple(line.split()) for line in _lines(f"{out}/graphs/bipartite-*")}
    graph_rows = {(f"u{k % 5}", f"i{k % 7}") for k in range(1, 9)}
    assert _run(
        "--input", str(tmp_path / "log.csv"), "--output", str(tmp_path / "neg"),
        "--graph_edges", "any", "--negatives_per_positive", "1",
    ) == 2  # fmt: skip
    assert "sampled negatives were never shown" in capsys.readouterr().err
    assert edges["positive"] == {(f"u{k % 5}", f"i{k % 7}") for k in range(2, 9, 2)}
    assert edges["any"] == graph_rows
