"""Santander: acquisitions (owned now, not in the previous snapshot), across chunks, in order."""
from __future__ import annotations

from pathlib import Path

import pytest

from caser.errors import DataError
from caser.readers import read_interactions
from caser.santander import read_santander

PRODUCTS = (
    "ind_ahor_fin_ult1 ind_aval_fin_ult1 ind_cco_fin_ult1 ind_cder_fin_ult1 ind_cno_fin_ult1 "
    "ind_ctju_fin_ult1 ind_ctma_fin_ult1 ind_ctop_fin_ult1 ind_ctpp_fin_ult1 ind_deco_fin_ult1 "
    "ind_deme_fin_ult1 ind_dela_fin_ult1 ind_ecue_fin_ult1 ind_fond_fin_ult1 ind_hip_fin_ult1 "
    "ind_plan_fin_ult1 ind_pres_fin_ult1 ind_reca_fin_ult1 ind_tjcr_fin_ult1 ind_valo_fin_ult1 "
    "ind_viv_fin_ult1 ind_nomina_ult1 ind_nom_pens_ult1 ind_recibo_ult1"
).split()
OTHER = ["ind_empleado", "pais_residencia", "sexo", "age"]

# (fecha_dato, ncodpers, owned products by short name; "nomina?" writes NaN for ind_nomina_ult1)
ROWS = [
    ("2015-02-28", 1050611, {"ctma", "dela", "nomina?"}),
    ("2015-01-28", 15889, {"cco", "recibo"}),
    ("2015-01-28", 300, {"ahor"}),
    ("2015-01-28", 400, set()),
    ("2015-02-28", 15889, {"cco", "recibo", "tjcr"}),
    ("2015-01-28", 200, set()),
    ("2015-03-28", 200, {"ecue"}),
    ("2015-02-28", 300, set()),
    ("2015-03-28", 15889, {"cco", "tjcr", "nomina", "nom_pens"}),
    ("2015-01-28", 1050611, {"ctma", "nomina?"}),  # earlier month, later chunk
    ("2015-03-28", 300, {"ahor"}),  # re-acquired after a month without it
    ("2015-02-28", 200, set()),
]


def short(product: str) -> str:
    return product.removeprefix("ind_").removesuffix("_ult1").removesuffix("_fin")


def write_csv(path: Path, rows=ROWS, date_override: dict[int, str] | None = None) -> Path:
    lines = [",".join(["fecha_dato", "ncodpers", *OTHER[:2], *PRODUCTS[:12], *OTHER[2:],
                       *PRODUCTS[12:]])]  # fmt: skip
    for r, (date, customer, owned) in enumerate(rows):
        date = (date_override or {}).get(r, date)
        flags = ["" if f"{short(p)}?" in owned else str(int(short(p) in owned)) for p in PRODUCTS]
        row = [date, str(customer), "N", "ES", *flags[:12], "V", " 35", *flags[12:]]
        lines.append(",".join(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def named(seqs) -> list[list[str]]:
    return [[short(seqs.item_ids[i]) for i in seqs.user(u)] for u in range(seqs.num_users)]


def test_acquisitions_across_chunks_in_month_then_column_order(tmp_path):
    seqs = read_santander(write_csv(tmp_path / "train_ver2.csv"), chunksize=3)
    assert seqs.user_ids.tolist() == [200, 300, 15889, 1050611]  # 400 never acquires anything
    assert named(seqs) == [
        ["ecue"],
        ["ahor", "ahor"],
        ["cco", "recibo", "tjcr", "nomina", "nom_pens"],
        ["ctma", "dela"],
    ]


def test_items_are_acquired_product_columns_in_column_order(tmp_path):
    seqs = read_santander(write_csv(tmp_path / "train_ver2.csv"), chunksize=4)
    assert seqs.item_ids[0] is None
    assert [short(p) for p in seqs.item_ids[1:]] == [
        "ahor", "cco", "ctma", "dela", "ecue", "tjcr", "nomina", "nom_pens", "recibo",
    ]  # fmt: skip
    assert seqs.num_items == 9


def test_chunk_size_does_not_change_the_result(tmp_path):
    path = write_csv(tmp_path / "train_ver2.csv")
    whole, chunked = read_santander(path), read_santander(path, chunksize=1)
    assert whole.to_lists() == chunked.to_lists()


def test_auto_detection_reads_santander(tmp_path):
    seqs = read_interactions(write_csv(tmp_path / "train_ver2.csv"))
    assert named(seqs)[2] == ["cco", "recibo", "tjcr", "nomina", "nom_pens"]


def test_bad_date_names_the_line_even_in_a_later_chunk(tmp_path):
    path = write_csv(tmp_path / "train_ver2.csv", date_override={7: "2015/02/28"})
    with pytest.raises(DataError, match=r"train_ver2\.csv: line 9: fecha_dato is not YYYY-MM-DD"):
        read_santander(path, chunksize=3)


def test_text_in_a_product_column_names_the_line(tmp_path):
    path = write_csv(tmp_path / "train_ver2.csv")
    lines = path.read_text().splitlines()
    lines[5] = lines[5].replace(",N,ES,0,", ",N,ES,yes,", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 6: ind_ahor_fin_ult1 is 'yes'"):
        read_santander(path, chunksize=2)


def test_header_without_ncodpers_is_a_data_error(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("fecha_dato,cliente,ind_ahor_fin_ult1\n2015-01-28,1,1\n")
    with pytest.raises(DataError, match=r"s\.csv: line 1: Santander header lacks ncodpers"):
        read_santander(path)


def test_a_trailing_comma_on_every_row_reads_the_same(tmp_path):
    plain = write_csv(tmp_path / "plain.csv")
    trailing = tmp_path / "trailing.csv"
    header, *rows = plain.read_text().splitlines()  # the header without one, as Kaggle's file
    trailing.write_text("".join(line + "\n" for line in [header, *(row + "," for row in rows)]))
    assert named(read_santander(trailing)) == named(read_santander(plain))


def test_a_broken_quote_or_archive_is_one_data_error(tmp_path):
    quoted = write_csv(tmp_path / "q.csv")
    quoted.write_text(quoted.read_text().replace("15889", '"15889', 1))
    with pytest.raises(DataError, match=r"q\.csv: cannot parse as CSV"):
        read_santander(quoted)
    fake = tmp_path / "fake.csv.gz"
    fake.write_text("fecha_dato,ncodpers,ind_cco_fin_ult1\n2015-01-28,1,1\n")
    with pytest.raises(DataError, match=r"fake\.csv\.gz: cannot read"):
        read_santander(fake)


def test_customer_numbers_are_tokens_a_leading_zero_is_another_customer(tmp_path):
    """Issue 24 defect 9: `015889` and `15889` were one customer, and `15889.0` a third spelling."""
    rows = [("2015-01-28", "15889", {"cco"}), ("2015-01-28", "015889", {"ahor"}),
            ("2015-02-28", "15889", {"cco", "tjcr"})]
    seqs = read_santander(write_csv(tmp_path / "t.csv", rows))
    assert seqs.user_ids.tolist() == ["015889", "15889"]  # not all canonical: text order
    assert named(seqs) == [["ahor"], ["cco", "tjcr"]]
    decimal = write_csv(tmp_path / "d.csv", [*rows, ("2015-03-28", "15889.0", {"cco"})])
    with pytest.raises(DataError, match=r"d\.csv: line 5: ncodpers is not a customer number: '15889.0'"):
        read_santander(decimal)


def test_an_empty_customer_number_is_called_empty_not_nan(tmp_path):
    path = write_csv(tmp_path / "e.csv", [("2015-01-28", "", {"cco"}), ("2015-02-28", "7", {"cco"})])
    with pytest.raises(DataError, match=r"e\.csv: line 2: ncodpers is not a customer number: an "
                                        r"empty field$"):
        read_santander(path)


@pytest.mark.parametrize("name", ["two.zip", "empty.zip", "fake.tar"])
def test_an_archive_pandas_cannot_unpack_by_its_name_is_one_line_naming_the_file(tmp_path, name):
    """pandas unpacks a Santander file by its name: a zip of two files or none raised its
    ValueError (no file named), a broken tar a four-line tarfile.ReadError."""
    import zipfile

    path = tmp_path / name
    if name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as archive:
            for member in ["a.csv", "b.csv"][: 2 if name == "two.zip" else 0]:
                archive.writestr(member, "fecha_dato,ncodpers,ind_cco_fin_ult1\n2015-01-28,1,1\n")
    else:
        path.write_text("fecha_dato,ncodpers,ind_cco_fin_ult1\n2015-01-28,1,1\n")
    with pytest.raises(DataError, match=rf"^{path}: cannot read") as info:
        read_interactions(path, "santander")
    assert "\n" not in str(info.value)
