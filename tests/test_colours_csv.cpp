// The colour CSV parser: the bundled table, the accepted CSV variants and every rejection.
// Line numbers in errors are 1-based physical lines where the record starts (the header is line 1).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <random>
#include <string>
#include <string_view>

#include <catch2/catch.hpp>

#include "cudaembed/colours.hpp"
#include "cudaembed/error.hpp"
#include "test_support.hpp"

using cudaembed::test::error_of;
using cudaembed::test::TempDir;

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using cudaembed::ColourTable;
using cudaembed::Error;
using cudaembed::parse_colours_csv;
using cudaembed::read_colours_csv;

const std::string kBundled = std::string(CUDAEMBED_SOURCE_DIR) + "/data/colours.csv";
const std::string kHeader = "Color Name,R;G;B Dec\n";

float c(int v) { return static_cast<float>(v) / 255.0f; }

std::string parse_error(std::string_view text, std::string_view source = "t.csv") {
  return error_of([&] { parse_colours_csv(text, source); });
}

// Checks the message starts with "<prefix>" (e.g. "t.csv:3: ") and contains `phrase`.
#define CHECK_PARSE_ERROR(text, prefix, phrase)               \
  do {                                                        \
    const std::string msg_ = parse_error(text);               \
    INFO("input: " << (text));                                \
    CHECK_THAT(msg_, StartsWith(prefix) && Contains(phrase)); \
  } while (0)

std::ptrdiff_t index_of(const ColourTable& t, std::string_view name) {
  const auto it = std::find(t.names.begin(), t.names.end(), name);
  return it == t.names.end() ? -1 : it - t.names.begin();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The bundled table
// ---------------------------------------------------------------------------------------------

TEST_CASE("csv: bundled data/colours.csv has 646 named colours", "[csv]") {
  const ColourTable t = read_colours_csv(kBundled);
  REQUIRE(t.size() == 646);
  REQUIRE(t.rgb.size() == 646 * 3);

  CHECK(t.names.front() == "snow");
  CHECK(t.rgb[0] == c(255));
  CHECK(t.rgb[1] == c(250));
  CHECK(t.rgb[2] == c(250));
  CHECK(t.hex(0) == "#FFFAFA");
  CHECK(t.names.back() == "LightGreen");
  CHECK(t.hex(645) == "#90EE90");

  for (std::size_t i = 0; i < t.size(); ++i) {
    INFO("colour " << i);
    CHECK_FALSE(t.names[i].empty());
  }
  CHECK(std::all_of(t.rgb.begin(), t.rgb.end(), [](float v) { return v >= 0.0f && v <= 1.0f; }));
}

TEST_CASE("csv: bundled names containing commas parse as one field", "[csv]") {
  const ColourTable t = read_colours_csv(kBundled);
  for (const char* name : {"DarkSlateGray, DarkSlateGrey", "DimGray, DimGrey", "SlateGray, SlateGrey",
                           "LightSlateGray, LightSlateGrey", "gray, grey", "LightGrey, LightGray", "DarkGrey, DarkGray",
                           "gray0, grey0", "gray25, grey25", "gray50, grey50", "gray75, grey75", "gray100, grey100"}) {
    INFO(name);
    CHECK(index_of(t, name) >= 0);
  }
  const auto dim = index_of(t, "DimGray, DimGrey");
  REQUIRE(dim >= 0);
  CHECK(t.hex(dim) == "#696969");
  CHECK(std::count_if(t.names.begin(), t.names.end(),
                      [](const std::string& n) { return n.find(',') != std::string::npos; }) == 12);
}

TEST_CASE("csv: bundled nameless rows are dropped and ids are row indices after dropping", "[csv]") {
  const ColourTable t = read_colours_csv(kBundled);
  // Nameless rows sit at file lines 9, 153, 324, 482 and 646 (data rows 7, 151, 322, 480, 644),
  // directly after named rows 7, 150, 320, 477 and 640 (1-based).
  CHECK(t.names[6] == "linen");         // named row 7
  CHECK(t.names[7] == "AntiqueWhite");  // just after the first nameless row
  CHECK(t.hex(7) == "#FAEBD7");
  CHECK(t.names[149] == "PeachPuff4");
  CHECK(t.names[150] == "NavajoWhite1");
  CHECK(t.hex(150) == "#FFDEAD");
  CHECK(t.names[319] == "IndianRed2");
  CHECK(t.names[320] == "IndianRed3");
  CHECK(t.names[476] == "gray17");
  CHECK(t.names[477] == "grey17");
  CHECK(t.names[639] == "gray100, grey100");
  CHECK(t.names[640] == "DarkGrey, DarkGray");
  CHECK(t.names[645] == "LightGreen");
}

TEST_CASE("csv: bundled names may share one RGB value", "[csv]") {
  const ColourTable t = read_colours_csv(kBundled);
  const auto navy = index_of(t, "navy"), navy_blue = index_of(t, "NavyBlue");
  REQUIRE(navy >= 0);
  REQUIRE(navy_blue >= 0);
  CHECK(navy != navy_blue);
  CHECK(t.hex(navy) == "#000080");
  CHECK(t.hex(navy_blue) == "#000080");
  const auto g1 = index_of(t, "gray1"), e1 = index_of(t, "grey1");
  REQUIRE(g1 >= 0);
  REQUIRE(e1 >= 0);
  CHECK(t.hex(g1) == t.hex(e1));
}

// ---------------------------------------------------------------------------------------------
// Accepted variants
// ---------------------------------------------------------------------------------------------

TEST_CASE("csv: minimal table parses with components scaled by 1/255", "[csv]") {
  const ColourTable t = parse_colours_csv(kHeader + "red,255;0;0\nteal,0;128;128\n", "t.csv");
  REQUIRE(t.size() == 2);
  CHECK(t.names[0] == "red");
  CHECK(t.names[1] == "teal");
  CHECK(t.rgb == std::vector<float>{c(255), c(0), c(0), c(0), c(128), c(128)});
  CHECK(t.hex(1) == "#008080");
}

TEST_CASE("csv: CRLF line endings", "[csv]") {
  const ColourTable t = parse_colours_csv("Color Name,R;G;B Dec\r\nred,255;0;0\r\nblue,0;0;255\r\n", "t.csv");
  REQUIRE(t.size() == 2);
  CHECK(t.names[1] == "blue");
  CHECK(t.hex(1) == "#0000FF");
  // Line numbers still count CRLF as one line.
  CHECK_PARSE_ERROR("Color Name,R;G;B Dec\r\nred,255;0;0\r\nblue,0;0\r\n", "t.csv:3: ", "wrong number");
}

TEST_CASE("csv: UTF-8 BOM before the header", "[csv]") {
  const ColourTable t = parse_colours_csv("\xEF\xBB\xBF" + kHeader + "red,255;0;0\n", "t.csv");
  REQUIRE(t.size() == 1);
  CHECK(t.names[0] == "red");
  const ColourTable crlf = parse_colours_csv(
      "\xEF\xBB\xBF"
      "Color Name,R;G;B Dec\r\nred,255;0;0\r\n",
      "t.csv");
  CHECK(crlf.size() == 1);
}

TEST_CASE("csv: extra and empty trailing columns", "[csv]") {
  const ColourTable t = parse_colours_csv(
      "Color Name,Credits,R;G;B Dec,RGB Hex,,\n"
      "red,me,255;0;0,FF0000,,\n"
      "green,me,0;255;0\n"        // fewer columns than the header but enough for R;G;B Dec
      "blue,me,0;0;255,,,,,,\n",  // more columns than the header
      "t.csv");
  REQUIRE(t.size() == 3);
  CHECK(t.names == std::vector<std::string>{"red", "green", "blue"});
  CHECK(t.hex(2) == "#0000FF");
}

TEST_CASE("csv: columns in a different order are found by header name", "[csv]") {
  const ColourTable t = parse_colours_csv("RGB Hex,R;G;B Dec,Credits,Color Name\nFF0000,255;0;0,me,red\n", "t.csv");
  REQUIRE(t.size() == 1);
  CHECK(t.names[0] == "red");
  CHECK(t.hex(0) == "#FF0000");
  // Header names are matched after trimming spaces, and may be quoted.
  const ColourTable q = parse_colours_csv("\"R;G;B Dec\", Color Name \n1;2;3,x\n", "t.csv");
  REQUIRE(q.size() == 1);
  CHECK(q.names[0] == "x");
}

TEST_CASE("csv: quoted fields with doubled quotes and commas", "[csv]") {
  const ColourTable t = parse_colours_csv(kHeader + "\"He said \"\"hi\"\"\",1;2;3\n\"a, b\",\"4;5;6\"\n", "t.csv");
  REQUIRE(t.size() == 2);
  CHECK(t.names[0] == "He said \"hi\"");
  CHECK(t.names[1] == "a, b");
  CHECK(t.hex(1) == "#040506");
}

TEST_CASE("csv: blank lines before the header are skipped like any other blank line", "[csv]") {
  const ColourTable t = parse_colours_csv("\n  \r\n" + kHeader + "snow,255;250;250\n", "t.csv");
  REQUIRE(t.size() == 1);
  CHECK(t.names[0] == "snow");
  CHECK_PARSE_ERROR("\n" + kHeader + "bad,1;2\n", "t.csv:3: ", "wrong number");
}

TEST_CASE("csv: quoted field containing a newline counts physical lines", "[csv]") {
  // The line break sits in an extra column: names may not hold control characters.
  const std::string header = "Color Name,R;G;B Dec,Credits\n";
  const ColourTable t = parse_colours_csv(header + "two,1;2;3,\"multi\nline\"\nnext,4;5;6,x\n", "t.csv");
  REQUIRE(t.size() == 2);
  CHECK(t.names[0] == "two");
  CHECK(t.names[1] == "next");
  // header = 1, two = 2 and 3, next = 4, bad = 5
  CHECK_PARSE_ERROR(header + "two,1;2;3,\"multi\nline\"\nnext,4;5;6,x\nbad,x;1;2,x\n", "t.csv:5: ", "non-numeric");
  CHECK_PARSE_ERROR(header + "\"two\nlines\",1;2;3\n", "t.csv:2: ", "control character 0x0A in colour name");
  // The record starting on line 2 and spanning lines 2-4 is reported at line 2.
  CHECK_PARSE_ERROR(header + "a,1;2,\"x\ny\nz\"\n", "t.csv:2: ", "wrong number");
  // The same with CRLF inside and outside the quotes.
  CHECK_PARSE_ERROR("Color Name,R;G;B Dec,Credits\r\ntwo,1;2;3,\"multi\r\nline\"\r\nbad,256;1;2,x\r\n",
                    "t.csv:4: ", "out of range");
}

TEST_CASE("csv: blank lines are skipped and line numbers still count them", "[csv]") {
  const ColourTable t = parse_colours_csv(kHeader + "red,255;0;0\n\n\n   \n\r\n", "t.csv");
  REQUIRE(t.size() == 1);
  const ColourTable crlf = parse_colours_csv("Color Name,R;G;B Dec\r\nred,255;0;0\r\n\r\n\r\n", "t.csv");
  REQUIRE(crlf.size() == 1);
  const ColourTable no_final_newline = parse_colours_csv(kHeader + "red,255;0;0", "t.csv");
  REQUIRE(no_final_newline.size() == 1);
  CHECK_PARSE_ERROR(kHeader + "red,255;0;0\n\n\nbad,1;2;3;4\n", "t.csv:5: ", "wrong number");
}

TEST_CASE("csv: spaces around RGB components and names are trimmed", "[csv]") {
  const ColourTable t = parse_colours_csv(kHeader + "  red  , 255 ;  0;0 \n\tx\t,\t1\t;2;3\t\n", "t.csv");
  REQUIRE(t.size() == 2);
  CHECK(t.names[0] == "red");
  CHECK(t.names[1] == "x");
  CHECK(t.hex(0) == "#FF0000");
  CHECK(t.hex(1) == "#010203");
}

TEST_CASE("csv: component bounds 0 and 255 and leading zeros are accepted", "[csv]") {
  const ColourTable t = parse_colours_csv(kHeader + "a,0;255;007\n", "t.csv");
  REQUIRE(t.size() == 1);
  CHECK(t.hex(0) == "#00FF07");
}

TEST_CASE("csv: valid multi-byte UTF-8 names are accepted", "[csv]") {
  const std::string name = "Caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x8E\xA8";  // Café € 🎨
  const ColourTable t = parse_colours_csv(kHeader + name + ",1;2;3\n", "t.csv");
  REQUIRE(t.size() == 1);
  CHECK(t.names[0] == name);
}

TEST_CASE("csv: nameless rows are dropped from a parsed table", "[csv]") {
  const ColourTable t =
      parse_colours_csv(kHeader + "a,1;1;1\n,2;2;2\n  ,3;3;3\nb,4;4;4\n\"\",5;5;5\nc,6;6;6\n", "t.csv");
  REQUIRE(t.size() == 3);
  CHECK(t.names == std::vector<std::string>{"a", "b", "c"});
  CHECK(t.hex(1) == "#040404");
  CHECK(t.hex(2) == "#060606");
}

TEST_CASE("csv: a nameless row is dropped whatever its other fields hold", "[csv]") {
  // pandas' dropna(subset=["Color Name"]) in the tutorial drops these rows without looking at them:
  // the parser drops them before checking anything else, and counts them for the log.
  const std::string header = "Color Name,Credits,R;G;B Dec,RGB Hex\n";
  const ColourTable t = parse_colours_csv(header +
                                              "a,me,1;1;1,x\n"
                                              ",,,\n"                   // only commas
                                              ",,,,,,,,\n"              // more commas than columns
                                              ",me,not;rgb;at all,x\n"  // a bad R;G;B
                                              "  ,me,1;2,x\n"           // too few components
                                              ",me\n"                   // too few fields
                                              "b,me,2;2;2,x\n",
                                          "t.csv");
  CHECK(t.names == std::vector<std::string>{"a", "b"});
  CHECK(t.hex(1) == "#020202");
  CHECK(t.nameless_dropped == 5);
  CHECK(read_colours_csv(kBundled).nameless_dropped == 5);  // data/README.md: five nameless rows
  // A named row is still checked in full.
  CHECK_PARSE_ERROR(header + ",,,\nc,me,1;2,x\n", "t.csv:3: ", "wrong number of RGB components");
}

// ---------------------------------------------------------------------------------------------
// Rejections: each names source:line and what is wrong
// ---------------------------------------------------------------------------------------------

TEST_CASE("csv: missing header column is rejected", "[csv]") {
  SECTION("no Color Name") {
    CHECK_PARSE_ERROR("Name,R;G;B Dec\nred,255;0;0\n", "t.csv:1: ", "missing header column 'Color Name'");
  }
  SECTION("no R;G;B Dec") {
    CHECK_PARSE_ERROR("Color Name,RGB\nred,255;0;0\n", "t.csv:1: ", "missing header column 'R;G;B Dec'");
  }
  SECTION("data row where the header should be") {
    CHECK_PARSE_ERROR("red,255;0;0\n", "t.csv:1: ", "missing header column");
  }
}

TEST_CASE("csv: non-numeric RGB component is rejected", "[csv]") {
  SECTION("letters") { CHECK_PARSE_ERROR(kHeader + "a,1;2;3\nb,1;x;3\n", "t.csv:3: ", "non-numeric RGB component"); }
  SECTION("decimal point") { CHECK_PARSE_ERROR(kHeader + "b,1.5;2;3\n", "t.csv:2: ", "non-numeric RGB component"); }
  SECTION("empty component") { CHECK_PARSE_ERROR(kHeader + "b,1;;3\n", "t.csv:2: ", "non-numeric RGB component"); }
  SECTION("empty field") { CHECK_PARSE_ERROR(kHeader + "a,1;2;3\nb,\n", "t.csv:3: ", "non-numeric RGB component"); }
  SECTION("trailing garbage") { CHECK_PARSE_ERROR(kHeader + "b,1;2;3x\n", "t.csv:2: ", "non-numeric RGB component"); }
}

TEST_CASE("csv: out-of-range RGB component is rejected", "[csv]") {
  SECTION("256") { CHECK_PARSE_ERROR(kHeader + "a,1;2;3\nb,256;0;0\n", "t.csv:3: ", "out of range"); }
  SECTION("-1") { CHECK_PARSE_ERROR(kHeader + "a,1;2;3\nb,0;-1;0\n", "t.csv:3: ", "out of range"); }
  SECTION("99999999999") { CHECK_PARSE_ERROR(kHeader + "a,1;2;3\nb,0;0;99999999999\n", "t.csv:3: ", "out of range"); }
}

TEST_CASE("csv: wrong number of RGB components is rejected", "[csv]") {
  SECTION("2") { CHECK_PARSE_ERROR(kHeader + "a,1;2;3\nb,1;2\n", "t.csv:3: ", "wrong number of RGB components"); }
  SECTION("4") { CHECK_PARSE_ERROR(kHeader + "a,1;2;3\nb,1;2;3;4\n", "t.csv:3: ", "wrong number of RGB components"); }
  SECTION("1") { CHECK_PARSE_ERROR(kHeader + "b,7\n", "t.csv:2: ", "wrong number of RGB components"); }
  SECTION("trailing separator") {
    CHECK_PARSE_ERROR(kHeader + "b,1;2;3;\n", "t.csv:2: ", "wrong number of RGB components");
  }
}

TEST_CASE("csv: empty file is rejected", "[csv]") {
  // Whole-file errors carry no line number: "t.csv: empty file ...".
  SECTION("zero bytes") { CHECK_PARSE_ERROR("", "t.csv: ", "empty file"); }
  SECTION("BOM only") { CHECK_PARSE_ERROR("\xEF\xBB\xBF", "t.csv: ", "empty file"); }
  SECTION("spaces only") { CHECK_PARSE_ERROR("   \t ", "t.csv: ", "empty file"); }
  SECTION("newlines only") { CHECK_PARSE_ERROR("\n\n\r\n", "t.csv: ", "empty file"); }
  SECTION("one whitespace line") { CHECK_PARSE_ERROR("  \n", "t.csv: ", "empty file"); }
}

// Whitespace between line breaks is still an empty file (a bug once: only the ends were trimmed).
TEST_CASE("csv: whitespace-only file over several lines is rejected as empty", "[csv]") {
  SECTION("newline space newline") { CHECK_PARSE_ERROR("\n \n", "t.csv: ", "empty file"); }
  SECTION("space newline space newline") { CHECK_PARSE_ERROR(" \n \n", "t.csv: ", "empty file"); }
  SECTION("tabs and CRLF") { CHECK_PARSE_ERROR("\t\r\n\t\r\n", "t.csv: ", "empty file"); }
}

TEST_CASE("csv: no usable rows is rejected", "[csv]") {
  SECTION("header only") { CHECK_PARSE_ERROR(kHeader, "t.csv: ", "no usable rows"); }
  SECTION("header only, no newline") { CHECK_PARSE_ERROR("Color Name,R;G;B Dec", "t.csv: ", "no usable rows"); }
  SECTION("header and blank lines") { CHECK_PARSE_ERROR(kHeader + "\n\n", "t.csv: ", "no usable rows"); }
  SECTION("only nameless rows") {
    const std::string msg = parse_error(kHeader + ",1;2;3\n  ,4;5;6\n");
    CHECK_THAT(msg, StartsWith("t.csv: ") && Contains("no usable rows") && Contains("2 rows without a name"));
  }
}

TEST_CASE("csv: invalid UTF-8 in a name is rejected", "[csv]") {
  SECTION("0xFF byte") { CHECK_PARSE_ERROR(kHeader + "a,1;2;3\nb\xFF,1;2;3\n", "t.csv:3: ", "invalid UTF-8"); }
  SECTION("truncated 2-byte sequence at the end") {
    CHECK_PARSE_ERROR(kHeader + "a,1;2;3\nb\xC3,1;2;3\n", "t.csv:3: ", "invalid UTF-8");
  }
  SECTION("truncated 2-byte sequence before ASCII") {
    CHECK_PARSE_ERROR(kHeader + "\xC3z,1;2;3\n", "t.csv:2: ", "invalid UTF-8");
  }
  SECTION("overlong encoding C0 AF") {
    CHECK_PARSE_ERROR(kHeader + "a,1;2;3\n\xC0\xAF,1;2;3\n", "t.csv:3: ", "invalid UTF-8");
  }
  SECTION("surrogate ED A0 80") {
    CHECK_PARSE_ERROR(kHeader + "a,1;2;3\nx\xED\xA0\x80,1;2;3\n", "t.csv:3: ", "invalid UTF-8");
  }
  SECTION("code point past U+10FFFF") {
    CHECK_PARSE_ERROR(kHeader + "\xF4\x90\x80\x80,1;2;3\n", "t.csv:2: ", "invalid UTF-8");
  }
  SECTION("lone continuation byte") { CHECK_PARSE_ERROR(kHeader + "\x80,1;2;3\n", "t.csv:2: ", "invalid UTF-8"); }
  SECTION("inside a quoted name") { CHECK_PARSE_ERROR(kHeader + "\"a, \xFF\",1;2;3\n", "t.csv:2: ", "invalid UTF-8"); }
}

TEST_CASE("csv: unterminated quote is rejected", "[csv]") {
  SECTION("at end of file") {
    CHECK_PARSE_ERROR(kHeader + "a,1;2;3\n\"never closed,1;2;3\n", "t.csv:3: ", "unterminated quoted field");
  }
  SECTION("spanning later lines, reported where the record starts") {
    CHECK_PARSE_ERROR(kHeader + "a,1;2;3\n\"open,1;2;3\nb,4;5;6\nc,7;8;9\n", "t.csv:3: ", "unterminated quoted field");
  }
}

TEST_CASE("csv: stray quote inside an unquoted field is rejected", "[csv]") {
  SECTION("in the name") { CHECK_PARSE_ERROR(kHeader + "a,1;2;3\nab\"c,1;2;3\n", "t.csv:3: ", "stray double quote"); }
  SECTION("in the RGB field") { CHECK_PARSE_ERROR(kHeader + "a,1;2\"3\"\n", "t.csv:2: ", "stray double quote"); }
  SECTION("text after a closing quote") {
    CHECK_PARSE_ERROR(kHeader + "a,1;2;3\n\"ab\"c,1;2;3\n", "t.csv:3: ", "after a closing quote");
  }
  SECTION("second quoted part after a closing quote") {
    CHECK_PARSE_ERROR(kHeader + "a,1;2;3\n\"ab\" \"c\",1;2;3\n", "t.csv:3: ", "stray double quote");
  }
}

TEST_CASE("csv: too few fields is rejected", "[csv]") {
  SECTION("one field where two are needed") {
    CHECK_PARSE_ERROR(kHeader + "a,1;2;3\nonlyname\n", "t.csv:3: ", "expected at least 2 fields");
  }
  SECTION("RGB column last of three") {
    CHECK_PARSE_ERROR("Color Name,Credits,R;G;B Dec\na,me,1;2;3\nb,me\n", "t.csv:3: ", "expected at least 3 fields");
  }
}

TEST_CASE("csv: errors use the source name given", "[csv]") {
  CHECK_THAT(parse_error(kHeader + "a,1;2\n", "dir/My File.csv"), StartsWith("dir/My File.csv:2: "));
}

// ---------------------------------------------------------------------------------------------
// read_colours_csv: file-system errors name the path
// ---------------------------------------------------------------------------------------------

TEST_CASE("csv: read_colours_csv of a good temporary file", "[csv]") {
  TempDir dir;
  const std::string path = (dir.path / "good.csv").string();
  std::ofstream(path, std::ios::binary) << "\xEF\xBB\xBF"
                                           "Color Name,R;G;B Dec\r\nred,255;0;0\r\n";
  const ColourTable t = read_colours_csv(path);
  REQUIRE(t.size() == 1);
  CHECK(t.names[0] == "red");
}

TEST_CASE("csv: read_colours_csv parse errors name the path and line", "[csv]") {
  TempDir dir;
  const std::string path = (dir.path / "bad.csv").string();
  std::ofstream(path, std::ios::binary) << kHeader << "red,255;0;0\nblue,0;0;256\n";
  CHECK_THAT(error_of([&] { read_colours_csv(path); }), StartsWith(path + ":3: ") && Contains("out of range"));
}

TEST_CASE("csv: read_colours_csv of a missing path", "[csv]") {
  TempDir dir;
  const std::string path = (dir.path / "missing.csv").string();
  CHECK_THAT(error_of([&] { read_colours_csv(path); }), Contains(path) && Contains("no such file"));
}

TEST_CASE("csv: read_colours_csv of a directory", "[csv]") {
  TempDir dir;
  const std::string path = dir.path.string();
  CHECK_THAT(error_of([&] { read_colours_csv(path); }), Contains(path) && Contains("is a directory"));
}

TEST_CASE("csv: read_colours_csv of a FIFO errors at once instead of blocking", "[csv]") {
  TempDir dir;
  const std::string path = (dir.path / "pipe.csv").string();
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  // No Catch2 assertions on the worker thread: it only reports what happened.
  auto result = std::async(std::launch::async, [&]() -> std::string {
    try {
      read_colours_csv(path);
    } catch (const Error& e) {
      return e.what();
    } catch (const std::exception& e) {
      return std::string("<not a cudaembed::Error> ") + e.what();
    }
    return "<did not throw>";
  });
  if (result.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    // The reader blocked in open(): open the write end to release it, then fail.
    const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    result.wait();
    FAIL("read_colours_csv blocked on a FIFO");
  }
  CHECK_THAT(result.get(), Contains(path) && Contains("not a regular file"));
}

TEST_CASE("csv: read_colours_csv of a character device", "[csv]") {
  CHECK_THAT(error_of([] { read_colours_csv("/dev/null"); }), Contains("/dev/null") && Contains("not a regular file"));
}

TEST_CASE("csv: read_colours_csv refuses a file over the size limit without reading it", "[csv]") {
  TempDir dir;
  const std::string path = (dir.path / "huge.csv").string();
  std::ofstream(path, std::ios::binary) << kHeader;
  fs::resize_file(path, (64ull << 20) + 1);  // sparse: no disk space used
  CHECK_THAT(error_of([&] { read_colours_csv(path); }), Contains(path) && Contains("MiB limit"));
}

TEST_CASE("csv: a row of thousands of fields is rejected before it costs memory", "[csv]") {
  // 60 MiB of commas once took 3 GB and 22 s; the row limit stops it at the first wide row.
  CHECK_PARSE_ERROR(kHeader + "snow,1;2;3" + std::string(5000, ',') + "\n", "t.csv:2: ", "more than 1024 fields");
  CHECK_PARSE_ERROR(std::string(10'000'000, ','), "t.csv:1: ", "more than 1024 fields");
}
