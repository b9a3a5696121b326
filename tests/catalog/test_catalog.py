import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shopray.catalog import load_catalog
from shopray.domain import Product, Vocabulary


def test_jsonl_bad_rows_reported_with_line_numbers(tmp_path):
    path = tmp_path / "c.jsonl"
    lines = [
        json.dumps({"product_id": "1", "title": "Red Shoe", "price": 10}).encode(),
        json.dumps({"title": "no id"}).encode(),  # line 2: missing id
        json.dumps({"product_id": "1", "title": "dup"}).encode(),  # line 3: duplicate
        b'{"product_id": "3", "title": "caf\xe9"}',  # line 4: latin-1 byte, not UTF-8
        json.dumps({"product_id": "4", "title": "Gold Tap", "price": 1e12}).encode(),  # line 5: absurd price
        b"",  # blank lines are not rows
        b"[1, 2]",  # line 7: not an object
        json.dumps({"product_id": 5, "title": "Blue Mug", "material": "ceramic"}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    load = load_catalog(path)
    assert [p.product_id for p in load.products] == ["1", "5"]
    assert load.products[1].attributes == {"material": "ceramic"}
    reasons = {b.line: b.reason for b in load.bad_rows}
    assert sorted(reasons) == [2, 3, 4, 5, 7]
    assert "product_id" in reasons[2]
    assert "duplicate" in reasons[3] and "line 1" in reasons[3]
    assert "UnicodeDecodeError" in reasons[4]
    assert "absurd price" in reasons[5]


def test_csv_needs_only_id_and_title(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(
        b"product_id,title,price\n"
        b"a,Hammer,12.50\n"
        b",Nameless,3\n"
        b"c,Saw,-4\n"
        b"d,\"Drill, cordless\",$1,299.00\n"
        b"e,Caf\xe9 table,10\n"
        b"f,Level,\n"
    )
    load = load_catalog(path)
    assert [p.product_id for p in load.products] == ["a", "f"]
    assert load.products[1].price is None
    assert {b.line for b in load.bad_rows} == {3, 4, 5, 6}


def test_parquet(tmp_path):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"product_id": ["x", "y", "x"], "title": ["One", "Two", "Three"], "brand": ["Acme", None, "Acme"]}), path)
    load = load_catalog(path)
    assert [p.product_id for p in load.products] == ["x", "y"]
    assert load.products[0].brand == "Acme" and load.products[1].brand is None
    assert [b.line for b in load.bad_rows] == [3]


def test_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="unsupported catalog format"):
        load_catalog(tmp_path / "c.xml")


def test_vocabulary_from_products():
    products = [
        Product(product_id="1", title="a", brand="Nike", category="Shoes > Running", color="red", price=50),
        Product(product_id="2", title="b", brand="Asics", category="Shoes > Running", price=150),
        Product(product_id="3", title="c"),
    ]
    vocab = Vocabulary.from_products(products)
    assert vocab.brands == ["Asics", "Nike"]
    assert vocab.categories == ["Shoes > Running"]
    assert vocab.price_min == 50 and vocab.price_max == 150
    assert vocab.category_price_p25["Shoes > Running"] == pytest.approx(75.0)
