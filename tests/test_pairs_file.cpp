// Users' pair files: the CSV parser (names, ints, quoting, chunk boundaries, every rejection with its
// file:line), the CEPAIRS1 binary format (round trip, damage) and the vocabulary TSV.
// Line numbers in errors are 1-based physical lines where the record starts.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "cudaembed/error.hpp"
#include "cudaembed/pairs_file.hpp"
#include "test_support.hpp"

using cudaembed::test::error_of;
using cudaembed::test::TempDir;

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using cudaembed::IdKind;
using cudaembed::PairsData;
using cudaembed::PairsFileOptions;
using cudaembed::read_pairs_file;

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  REQUIRE(out.good());
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The CEPAIRS1 checksum, computed independently of the library: FNV-1a 64 of everything after the header.
void reseal(std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (std::size_t i = 64; i < bytes.size(); ++i) h = (h ^ static_cast<unsigned char>(bytes[i])) * 0x100000001b3ull;
  std::memcpy(bytes.data() + 48, &h, 8);
}

void require_same(const PairsData& x, const PairsData& y) {
  CHECK(x.pairs.a == y.pairs.a);
  CHECK(x.pairs.b == y.pairs.b);
  CHECK(x.pairs.label == y.pairs.label);
  CHECK(x.pairs.weight == y.pairs.weight);
  CHECK(x.names == y.names);
  CHECK(x.rows == y.rows);
  CHECK(x.labelled == y.labelled);
  CHECK(x.ids == y.ids);
}

// A t.csv in a fresh directory; error() and read() first write `text` to it.
struct CsvCase {
  TempDir dir;
  std::string path = dir / "t.csv";
  std::string error(const std::string& text, const PairsFileOptions& options = {}) {
    write_file(path, text);
    return error_of([&] { read_pairs_file(path, options); });
  }
  PairsData read(const std::string& text, const PairsFileOptions& options = {}) {
    write_file(path, text);
    return read_pairs_file(path, options);
  }
};

// Requires that reading `text` fails with "<path>:<line>: " and a message containing `phrase`.
#define CHECK_CSV_ERROR(text, line, phrase, ...)                                   \
  do {                                                                             \
    CsvCase case_;                                                                 \
    const std::string msg_ = case_.error(text __VA_OPT__(, ) __VA_ARGS__);         \
    INFO("input: " << (text));                                                     \
    CHECK_THAT(msg_, StartsWith(case_.path + ":" #line ": ") && Contains(phrase)); \
  } while (0)

}  // namespace

TEST_CASE("pairs_file: names get ids in order of first appearance with RFC 4180 quoting", "[pairs_file]") {
  CsvCase c;
  const PairsData d = c.read(
      "a,b,label,weight\n"
      "red,\"Grey, Silver\",1,0.5\n"
      "\"say \"\"hi\"\"\",red,0,2\n"
      "\"Grey, Silver\",blue,0.25,0\n"
      "\" red\",\"red \",1,1\n");
  CHECK(d.ids == IdKind::names);
  REQUIRE(d.names == std::vector<std::string>{"red", "Grey, Silver", "say \"hi\"", "blue", " red", "red "});
  CHECK(d.rows == 6);
  CHECK(d.labelled);
  CHECK(d.pairs.a == std::vector<uint32_t>{0, 2, 1, 4});
  CHECK(d.pairs.b == std::vector<uint32_t>{1, 0, 3, 5});
  CHECK(d.pairs.label == std::vector<float>{1.0f, 0.0f, 0.25f, 1.0f});
  CHECK(d.pairs.weight == std::vector<float>{0.5f, 2.0f, 0.0f, 1.0f});
}

TEST_CASE("pairs_file: spaces and tabs around unquoted fields are dropped, quoted ones kept", "[pairs_file]") {
  CsvCase c;
  const PairsData d = c.read(
      "apple_1, hammer_2,1\n"
      " hammer_2 ,\tapple_1\t, 0 \n"
      "  \" pear\" , \"apple_1\",1\r\n"
      "apple 1 ,pear 2\t,1\n");
  REQUIRE(d.names == std::vector<std::string>{"apple_1", "hammer_2", " pear", "apple 1", "pear 2"});
  CHECK(d.pairs.a == std::vector<uint32_t>{0, 1, 2, 3});
  CHECK(d.pairs.b == std::vector<uint32_t>{1, 0, 0, 4});
  CHECK(d.pairs.label == std::vector<float>{1.0f, 0.0f, 1.0f, 1.0f});
  const PairsData ints = c.read(" 7 ,\t3\n\"1\" , 10\n");
  CHECK(ints.ids == IdKind::ints);
  CHECK(ints.pairs.a == std::vector<uint32_t>{7, 1});
  CHECK(ints.pairs.b == std::vector<uint32_t>{3, 10});
}

TEST_CASE("pairs_file: a header is the column names or a third field that is not a number", "[pairs_file]") {
  CsvCase c;
  CHECK(c.read("A , B\nx,y\n").names == std::vector<std::string>{"x", "y"});
  CHECK(c.read("src,dst,target\nx,y,1\n").pairs.size() == 1);
  CHECK(c.read("src,dst,label,w\nx,y,1,2\n").pairs.weight == std::vector<float>{2.0f});
  // Not headers: a 2-column line of other names, and a third field that is a number.
  CHECK(c.read("src,dst\nx,y\n").names == std::vector<std::string>{"src", "dst", "x", "y"});
  CHECK(c.read("a,b,1\nx,y,0\n").pairs.size() == 2);
}

TEST_CASE("pairs_file: BOM CRLF blank lines and a missing final newline are accepted", "[pairs_file]") {
  CsvCase c;
  const PairsData d = c.read(
      "\xEF\xBB\xBF"
      "a,b,label\r\n\r\nx,y,1\r\n\n\"p\nq\",y,0\r\nz,x,1");
  CHECK(d.names == std::vector<std::string>{"x", "y", "p\nq", "z"});
  CHECK(d.pairs.label == std::vector<float>{1.0f, 0.0f, 1.0f});
  // Lines are counted through blank lines and line breaks inside quotes: the bad label is on line 8.
  CHECK_CSV_ERROR("a,b,label\n\nx,y,1\n\"p\nq\",y,0\n\nz,x,1\nz,y,7\n", 8, "label '7'");
}

TEST_CASE("pairs_file: a 2-column file holds positives only", "[pairs_file]") {
  CsvCase c;
  const PairsData d = c.read("x,y\ny,z\n");
  CHECK_FALSE(d.labelled);
  CHECK(d.pairs.label == std::vector<float>{1.0f, 1.0f});
  CHECK(d.pairs.weight.empty());
  CHECK(d.pairs.a == std::vector<uint32_t>{0, 1});
  CHECK(d.pairs.b == std::vector<uint32_t>{1, 2});
  CHECK(c.read("a,b,label\nx,y,0\n").pairs.weight.empty());
}

TEST_CASE("pairs_file: integer ids with and without rows", "[pairs_file]") {
  CsvCase c;
  const PairsData d = c.read("a,b,label\n7,3,1\n0,007,0\n");
  CHECK(d.ids == IdKind::ints);
  CHECK(d.names.empty());
  CHECK(d.rows == 8);
  CHECK(d.pairs.a == std::vector<uint32_t>{7, 0});
  CHECK(d.pairs.b == std::vector<uint32_t>{3, 7});
  CHECK(c.read("7,3,1\n", {IdKind::automatic, 100}).rows == 100);
  CHECK(c.read("4294967294,0\n").rows == 4294967295ull);
  // --id-kind names reads the same text as names.
  CHECK(c.read("7,3,1\n3,8,0\n", {IdKind::names, 0}).names == std::vector<std::string>{"7", "3", "8"});

  CHECK_CSV_ERROR("7,3,1\n1,10,1\n", 2, "id 10 in column b is not below --rows 10", PairsFileOptions{IdKind::ints, 10});
  CHECK_CSV_ERROR("1,2\n4294967295,0\n", 2, "too large");
  CHECK_CSV_ERROR("1,2\n99999999999999999999,0\n", 2, "too large");
  CHECK_CSV_ERROR("1,2\n3,x\n", 2,
                  "'x' in column b is not an integer id (line 1 held integer ids); pass --id-kind names");
  CHECK_CSV_ERROR("1,2\n-3,4\n", 2, "'-3' in column a is not an integer id");
  CHECK_CSV_ERROR("src,dst\n1,2\n", 1, "(a header line must read a,b[,label[,weight]])",
                  PairsFileOptions{IdKind::ints, 0});
  CHECK_CSV_ERROR("x,y\n", 1, "--rows 5 applies to integer ids only", PairsFileOptions{IdKind::automatic, 5});
  CsvCase e;
  CHECK_THAT(e.error("1,2\n", {IdKind::names, 5}), StartsWith("--rows 5: applies to integer ids only"));
}

TEST_CASE("pairs_file: every bad line is an error naming file and line", "[pairs_file]") {
  CHECK_CSV_ERROR("a,b,label\nx,y,1\nx,y\n", 3, "2 columns, but line 1 has 3");
  // Found by fuzzing: the first line after a header was read as ids before its width was checked.
  CHECK_CSV_ERROR(".2,30,\n5\n", 2, "1 columns, but line 1 has 3");
  {  // and a NUL in a header was refused or not depending on whether the first chunk reached it
    CsvCase c;
    write_file(c.path, std::string("src_node\0,dst,target\nred,blue,1\n", 31));
    for (const std::size_t chunk : {4, 1 << 20})
      CHECK_THAT(error_of([&] { cudaembed::read_pairs_csv(c.path, {}, chunk); }), Contains("NUL byte"));
  }
  CHECK_CSV_ERROR("x,y,1,1,1\n", 1, "5 columns; a pairs file has 2 (a,b), 3 (a,b,label) or 4 (a,b,label,weight)");
  CHECK_CSV_ERROR("x\n", 1, "1 columns");
  CHECK_CSV_ERROR("x,y,1\nx,y,2\n", 2, "label '2' is not a number in [0, 1]");
  CHECK_CSV_ERROR("x,y,1\nx,y,-1\n", 2, "label '-1' is not a number in [0, 1]");
  CHECK_CSV_ERROR("x,y,1\nx,y,nan\n", 2, "label 'nan' is not a number in [0, 1]");
  CHECK_CSV_ERROR("x,y,1\nx,y,yes\n", 2, "label 'yes' is not a number in [0, 1]");
  CHECK_CSV_ERROR("x,y,1\nx,y,1 5\n", 2, "label '1 5' is not a number in [0, 1]");
  CHECK_CSV_ERROR("x,y,1\nx,y,\x01\n", 2, "label '\\x01'");
  CHECK_CSV_ERROR("x,y,1,1\nx,y,1,-0.5\n", 2, "weight '-0.5' is not a finite number >= 0");
  CHECK_CSV_ERROR("x,y,1,1\nx,y,1,inf\n", 2, "weight 'inf' is not a finite number >= 0");
  CHECK_CSV_ERROR("x,y\n,y\n", 2, "empty name in column a");
  CHECK_CSV_ERROR("x,y\nx,\"\"\n", 2, "empty name in column b");
  CHECK_CSV_ERROR("x,y\nx,\xC3\n", 2, "invalid UTF-8 in the name in column b at byte 0 (0xC3)");
  CHECK_CSV_ERROR("x,y\nx,y\"z\n", 2, "stray double quote");
  CHECK_CSV_ERROR("x,y\n\"x\"z,y\n", 2, "unexpected character 'z' after a closing quote");
  CHECK_CSV_ERROR("x,y\nx,\"y\n", 2, "unterminated quoted field");
  CHECK_CSV_ERROR("x,y\n" + std::string(1100000, 'x') + ",y\n", 2, "a line longer than 1 MiB");
  // The first error in the file is the one reported, though names are looked up a batch of lines later.
  CHECK_CSV_ERROR("x,y,1\nx,\xC3,1\nx,y,5\n", 2, "invalid UTF-8");

  CsvCase c;
  CHECK(c.error("") == c.path + ": no pairs: the file is empty");
  CHECK(c.error("\n\r\n\n") == c.path + ": no pairs: the file is empty");
  CHECK(c.error("a,b,label\n") == c.path + ": no pairs: only a header line");
  CHECK(c.error("a,b\n\n") == c.path + ": no pairs: only a header line");
  CHECK_THAT(c.error(std::string("\xFF\xFEx\0,\0y\0", 8)), StartsWith(c.path + ":1: the file is UTF-16"));
  CHECK_THAT(error_of([&] { read_pairs_file(c.dir / "missing.csv"); }), Contains("missing.csv: cannot open"));
  CHECK_THAT(error_of([&] { read_pairs_file(c.dir.path.string()); }), Contains("is a directory"));
}

TEST_CASE("pairs_file: chunk boundaries anywhere parse the same", "[pairs_file]") {
  CsvCase c;
  const std::string text =
      "\xEF\xBB\xBF"
      "a,b,label,weight\r\n"
      "\"Grey, Silver\",\"say \"\"hi\"\"\",1,0.5\r\n"
      "\n"
      "\"two\nlines\",red,0.25,3\n"
      "red,\"\"\"\",0,1e-3\r\n"
      "blue,red,1,1";
  write_file(c.path, text);
  const PairsData whole = read_pairs_file(c.path);
  REQUIRE(whole.names == std::vector<std::string>{"Grey, Silver", "say \"hi\"", "two\nlines", "red", "\"", "blue"});
  for (std::size_t chunk = 1; chunk <= text.size() + 1; ++chunk) {
    INFO("chunk " << chunk);
    require_same(cudaembed::read_pairs_csv(c.path, {}, chunk), whole);
  }
  // An error is found on the same line however the file is cut.
  const std::string bad = text + "\nred,blue,1,x\n";
  write_file(c.path, bad);
  for (std::size_t chunk = 1; chunk <= bad.size() + 1; ++chunk) {
    INFO("chunk " << chunk);
    CHECK_THAT(error_of([&] { cudaembed::read_pairs_csv(c.path, {}, chunk); }), StartsWith(c.path + ":8: weight 'x'"));
  }
}

TEST_CASE("pairs_file: CSV converted to binary reads back identical", "[pairs_file]") {
  TempDir dir;
  const std::string csv = dir / "p.csv", bin = dir / "p.bin", written = dir / "w.bin";
  const std::vector<std::string> files = {
      "a,b,label,weight\nred,\"Grey, Silver\",1,0.5\n\"x\"\"y\",red,0,2\nblue,blue,0.75,0\n",
      "a,b,label\n5,1,1\n0,9,0\n",
      "p,q\nq,r\n",
  };
  for (const auto& text : files) {
    INFO(text);
    write_file(csv, text);
    const PairsData from_csv = read_pairs_file(csv);
    const cudaembed::ConvertStats stats = cudaembed::convert_pairs_file(csv, bin);
    CHECK(stats.pairs == from_csv.pairs.size());
    CHECK(stats.rows == from_csv.rows);
    CHECK(stats.input_bytes == text.size());
    require_same(read_pairs_file(bin), from_csv);
    // The streaming converter and write_pairs_binary write the same bytes.
    cudaembed::write_pairs_binary(written, from_csv);
    CHECK(read_bytes(written) == read_bytes(bin));
    CHECK_FALSE(fs::exists(bin + ".tmp"));
  }
  // The header, byte by byte, for the 2-column names file: 2 pairs of 3 names.
  const std::string bytes = read_bytes(bin);
  REQUIRE(bytes.size() == 64 + 2 * 16 + 3 * (4 + 1));
  auto u32 = [&](std::size_t at) {
    uint32_t v;
    std::memcpy(&v, bytes.data() + at, 4);
    return v;
  };
  auto u64 = [&](std::size_t at) {
    uint64_t v;
    std::memcpy(&v, bytes.data() + at, 8);
    return v;
  };
  auto f32 = [&](std::size_t at) {
    float v;
    std::memcpy(&v, bytes.data() + at, 4);
    return v;
  };
  CHECK(bytes.substr(0, 8) == "CEPAIRS1");
  CHECK(u32(8) == 1);
  CHECK(u32(12) == 4);  // names, no label column, no weight column
  CHECK(u64(16) == 2);
  CHECK(u64(24) == 3);
  CHECK(u64(32) == 96);
  CHECK(u64(40) == 15);
  CHECK(u64(56) == 0);
  CHECK(u32(80) == 1);  // second record: a = q (1), b = r (2), label 1, weight 1
  CHECK(u32(84) == 2);
  CHECK(f32(88) == 1.0f);
  CHECK(f32(92) == 1.0f);
  CHECK(bytes.substr(96, 5) == std::string("\x01\x00\x00\x00p", 5));
  std::string copy = bytes;
  reseal(copy);
  CHECK(copy == bytes);
}

TEST_CASE("pairs_file: a failed conversion leaves the previous output alone", "[pairs_file]") {
  TempDir dir;
  const std::string good = dir / "good.csv", bad = dir / "bad.csv", out = dir / "out.bin";
  write_file(good, "x,y\n");
  write_file(bad, "x,y,1\nx,y,2\n");
  cudaembed::convert_pairs_file(good, out);
  const std::string before = read_bytes(out);
  CHECK_THAT(error_of([&] { cudaembed::convert_pairs_file(bad, out); }), StartsWith(bad + ":2: label '2'"));
  CHECK(read_bytes(out) == before);
  CHECK_FALSE(fs::exists(out + ".tmp"));
  CHECK_THAT(error_of([&] { cudaembed::convert_pairs_file(bad, dir / "new.bin"); }), Contains("label"));
  CHECK_FALSE(fs::exists(dir / "new.bin"));
  CHECK_FALSE(fs::exists(dir / "new.bin.tmp"));
  CHECK_THAT(error_of([&] { cudaembed::convert_pairs_file(out, dir / "again.bin"); }),
             Contains("already a CEPAIRS1 binary"));
}

TEST_CASE("pairs_file: a damaged binary file is refused with what is wrong", "[pairs_file]") {
  TempDir dir;
  const std::string csv = dir / "p.csv", bin = dir / "p.bin", names_bin = dir / "n.bin";
  write_file(csv, "a,b,label\n1,2,1\n3,0,0\n2,2,1\n");
  cudaembed::convert_pairs_file(csv, bin);
  write_file(csv, "x,y\n");
  cudaembed::convert_pairs_file(csv, names_bin);
  const std::string good = read_bytes(bin);  // 64 + 3 * 16 = 112 bytes, rows 4
  REQUIRE(good.size() == 112);
  const std::string path = dir / "damaged.bin";
  auto error_with = [&](const std::string& bytes, const PairsFileOptions& options = {}) {
    write_file(path, bytes);
    return error_of([&] { read_pairs_file(path, options); });
  };

  std::string bytes = good;
  bytes[0] = 'X';  // no longer a CEPAIRS1 file: read as CSV, where its NUL bytes give it away
  CHECK_THAT(error_with(bytes), StartsWith(path + ": holds a NUL byte") && Contains("not a CEPAIRS1 pairs file"));
  bytes = good;
  bytes[7] = '2';
  CHECK_THAT(error_with(bytes), Contains("not the magic 'CEPAIRS1'"));

  CHECK(error_with(good.substr(0, 100)) ==
        path + ": truncated: header says 3 pairs (112 bytes) but the file has 100 bytes");
  CHECK(error_with(good.substr(0, 40)) == path + ": truncated: 40 bytes, less than the 64-byte CEPAIRS1 header");
  CHECK_THAT(error_with(good + "x"), Contains("trailing bytes: header says 3 pairs (112 bytes) but the file has 113"));
  const std::string names_good = read_bytes(names_bin);
  CHECK_THAT(error_with(names_good.substr(0, names_good.size() - 1)),
             Contains("truncated: header says 1 pairs and 10 bytes of names (90 bytes) but the file has 89 bytes"));

  bytes = good;
  bytes[64 + 16 + 9] ^= 0x10;  // a bit of the second label
  CHECK_THAT(error_with(bytes), StartsWith(path + ": checksum mismatch") && Contains("the file is damaged"));
  bytes = names_good;
  bytes.back() ^= 1;  // a name
  CHECK_THAT(error_with(bytes), Contains("checksum mismatch"));

  bytes = good;
  const uint32_t four = 4;
  std::memcpy(bytes.data() + 64 + 2 * 16 + 4, &four, 4);  // b of pair 2 = rows
  reseal(bytes);
  CHECK(error_with(bytes) == path + ": pair 2: id 4 in column b is not below the 4 rows");
  bytes = good;
  const float two = 2.0f;
  std::memcpy(bytes.data() + 64 + 8, &two, 4);
  reseal(bytes);
  CHECK_THAT(error_with(bytes), Contains("pair 0: label 2 is not a number in [0, 1]"));
  bytes = good;
  const uint32_t version = 2;
  std::memcpy(bytes.data() + 8, &version, 4);
  CHECK_THAT(error_with(bytes), Contains("CEPAIRS1 version 2; this build reads version 1"));
  bytes = good;
  const uint32_t weights_only = 2;  // the weight flag without the label flag (found by fuzz_pairs_file)
  std::memcpy(bytes.data() + 12, &weights_only, 4);
  CHECK_THAT(error_with(bytes), Contains("flags 0x2 say weights without labels"));
  bytes = good;
  const uint64_t count = uint64_t{1} << 60;  // count * 16 would wrap around to a small number
  std::memcpy(bytes.data() + 16, &count, 8);
  CHECK_THAT(error_with(bytes), Contains("truncated: header says 1152921504606846976 pairs"));

  CHECK(error_with(good, {IdKind::names, 0}) == path + ": holds integer ids, but --id-kind names was given");
  CHECK(error_with(good, {IdKind::ints, 3}) == path + ": pair 1: id 3 is not below --rows 3");
  write_file(path, good);
  CHECK(read_pairs_file(path, {IdKind::ints, 10}).rows == 10);
}

TEST_CASE("pairs_file: a vocabulary round trips through TSV with escapes", "[pairs_file]") {
  TempDir dir;
  const std::string path = dir / "vocab.tsv";
  const std::vector<std::string> names = {"red", "tab\there", "two\nlines", "cr\rhere", "back\\slash", "ünï ☃", "\\t"};
  cudaembed::write_vocab_tsv(path, names);
  CHECK(read_bytes(path) == "red\ntab\\there\ntwo\\nlines\ncr\\rhere\nback\\\\slash\nünï ☃\n\\\\t\n");
  CHECK(cudaembed::read_vocab_tsv(path) == names);

  write_file(path, "\xEF\xBB\xBFred\r\nblue");
  CHECK(cudaembed::read_vocab_tsv(path) == std::vector<std::string>{"red", "blue"});
  write_file(path, "");
  CHECK(cudaembed::read_vocab_tsv(path).empty());
  write_file(path, "red\nbad\\x\n");
  CHECK_THAT(error_of([&] { cudaembed::read_vocab_tsv(path); }), StartsWith(path + ":2: unknown escape '\\x'"));
  write_file(path, "red\n\nblue\n");
  CHECK_THAT(error_of([&] { cudaembed::read_vocab_tsv(path); }), StartsWith(path + ":2: empty name"));
  CHECK_THAT(error_of([&] { cudaembed::write_vocab_tsv(path, {"red", ""}); }), Contains("the name of id 1 is empty"));
}

TEST_CASE("pairs_file: id kinds parse by name", "[pairs_file]") {
  CHECK(cudaembed::parse_id_kind("auto") == IdKind::automatic);
  CHECK(cudaembed::parse_id_kind("names") == IdKind::names);
  CHECK(cudaembed::parse_id_kind("ints") == IdKind::ints);
  for (const IdKind kind : {IdKind::automatic, IdKind::names, IdKind::ints})
    CHECK(cudaembed::parse_id_kind(cudaembed::to_string(kind)) == kind);
  CHECK(error_of([] { cudaembed::parse_id_kind("int"); }) == "--id-kind int: expected auto, names or ints");
}

// Throughput on a large generated file (tests/data/make_pairs_csv.py): hidden, run by hand as
// docs/pairs-format.md says. Prints the median of 3 runs of each step.
TEST_CASE("pairs_file: throughput on CUDAEMBED_PAIRS_BENCH", "[.][pairs_file_bench]") {
  const char* csv = std::getenv("CUDAEMBED_PAIRS_BENCH");
  if (!csv) FAIL("set CUDAEMBED_PAIRS_BENCH to a CSV of pairs");
  TempDir dir;
  const std::string bin = dir / "p.bin";
  auto report = [&](const char* what, const std::string& input, const std::function<uint64_t()>& run) {
    std::vector<double> seconds;
    for (int i = 0; i < 3; ++i) {
      const auto start = std::chrono::steady_clock::now();
      REQUIRE(run() > 0);
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(seconds.begin(), seconds.end());
    const double megabytes = static_cast<double>(fs::file_size(input)) / 1e6;
    std::printf("%-32s %7.0f MB in %6.3f s: %6.1f MB/s (median of 3)\n", what, megabytes, seconds[1],
                megabytes / seconds[1]);
  };
  report("read_pairs_file (CSV)", csv, [&] { return read_pairs_file(csv).pairs.size(); });
  report("convert_pairs_file (CSV)", csv, [&] { return cudaembed::convert_pairs_file(csv, bin).pairs; });
  report("read_pairs_file (CEPAIRS1)", bin, [&] { return read_pairs_file(bin).pairs.size(); });
}
