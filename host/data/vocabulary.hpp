// The vocabulary of a names pairs file: NameIndex maps names to ids 0, 1, ... in order of first
// appearance. Inline here because the CSV reader's inner loop calls it once per name.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

namespace cudaembed::pairs_detail {

// Ids stay below this, so it marks an empty slot and a count of ids always fits in uint32.
constexpr uint32_t kNoId = 0xFFFFFFFFu;

// Names -> ids 0, 1, ... in order of first appearance. Open addressing with linear probing in a
// table at most half full whose 32-byte slots hold the name's length and first 24 bytes: in a large
// vocabulary each lookup is a cache miss, and this keeps it to one for names up to 24 bytes (names
// kept only in another array would add two more). All names also lie back to back in one string, for
// the longer ones and for names(). docs/pairs-format.md compares std::unordered_map.
// Kept by hand rather than abseil's flat_hash_map (Debian's libabsl-dev 20220623), because that was
// 40% slower here: the same batch prefetch (map.prefetch(key), find(key, hash)) read the 1M-name
// bench file at 135 MB/s against this table's 235 MB/s (medians of 3, 2026-12-04, docs/pairs-format.md).
class NameIndex {
 public:
  static uint64_t hash(std::string_view name) { return std::hash<std::string_view>{}(name); }
  // Starts fetching the slot of `hash`, so that the lookups of a batch wait for memory together.
  void prefetch(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[home(hash, slots_.size())]);
  }

  // The id of `name` (whose hash is `hash`), adding it when new (then `added` is true); kNoId when
  // the vocabulary is full.
  uint32_t find_or_add(std::string_view name, uint64_t hash, bool& added) {
    if ((size() + 1) * 2 > slots_.size()) grow();
    const Slot key = slot_for(name, kNoId);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = home(hash, slots_.size());; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (slot.id == kNoId) {
        added = true;
        if (size() == kNoId) return kNoId;
        slot = key;
        slot.id = static_cast<uint32_t>(size());
        arena_.append(name);
        ends_.push_back(arena_.size());
        return slot.id;
      }
      if (slot.length == key.length && slot.head[0] == key.head[0] && slot.head[1] == key.head[1] &&
          slot.head[2] == key.head[2] &&
          (name.size() <= kHeadBytes || name_of(slot.id).substr(kHeadBytes) == name.substr(kHeadBytes))) {
        added = false;
        return slot.id;
      }
    }
  }

  std::size_t size() const { return ends_.size(); }
  std::string_view name_of(uint32_t id) const {
    const uint64_t begin = id == 0 ? 0 : ends_[id - 1];
    return std::string_view(arena_).substr(begin, ends_[id] - begin);
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(size());
    for (uint32_t id = 0; id < size(); ++id) out.emplace_back(name_of(id));
    return out;
  }

 private:
  static constexpr std::size_t kHeadBytes = 24;
  struct alignas(32) Slot {
    uint32_t id = kNoId;
    uint32_t length = 0;
    std::array<uint64_t, kHeadBytes / 8> head = {};  // the name's first bytes, zero-padded
  };

  // Where the probe for `hash` starts in a table of `slots`: the first slot of a 64-byte line, so
  // that most lookups stay within the one line that prefetch() fetched.
  static std::size_t home(uint64_t hash, std::size_t slots) { return hash & (slots - 1) & ~std::size_t{1}; }

  static Slot slot_for(std::string_view name, uint32_t id) {
    Slot slot;
    slot.id = id;
    slot.length = static_cast<uint32_t>(name.size());
    std::memcpy(slot.head.data(), name.data(), std::min(name.size(), kHeadBytes));
    return slot;
  }

  void grow() {
    SlotTable bigger(std::max<std::size_t>(slots_.size() * 2, 1024));
    const std::size_t mask = bigger.size() - 1;
    for (uint32_t id = 0; id < size(); ++id) {
      std::size_t i = home(hash(name_of(id)), bigger.size());
      while (bigger[i].id != kNoId) i = (i + 1) & mask;
      bigger[i] = slot_for(name_of(id), id);
    }
    slots_ = std::move(bigger);
  }

  // The slots, 64-byte aligned, and in 2 MiB pages where the kernel has them (transparent huge pages
  // on madvise): with 4 KiB pages a lookup in a large table misses the TLB as well as the cache.
  class SlotTable {
   public:
    SlotTable() = default;
    explicit SlotTable(std::size_t n) : size_(n) {
      constexpr std::size_t kHugePage = 2u << 20;
      const std::size_t align = n * sizeof(Slot) >= kHugePage ? kHugePage : 64;
      const std::size_t bytes = (n * sizeof(Slot) + align - 1) / align * align;
      slots_.reset(static_cast<Slot*>(std::aligned_alloc(align, bytes)));
      if (!slots_) throw std::bad_alloc();
      if (align == kHugePage) ::madvise(slots_.get(), bytes, MADV_HUGEPAGE);  // a hint: 20% faster where taken
      std::uninitialized_fill_n(slots_.get(), n, Slot{});
    }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    Slot& operator[](std::size_t i) { return slots_.get()[i]; }
    const Slot& operator[](std::size_t i) const { return slots_.get()[i]; }

   private:
    struct Free {
      void operator()(Slot* p) const { std::free(p); }
    };
    std::unique_ptr<Slot[], Free> slots_;
    std::size_t size_ = 0;
  };

  SlotTable slots_;
  std::string arena_;
  std::vector<uint64_t> ends_;  // name `id` is arena_[ends_[id - 1], ends_[id])
};

}  // namespace cudaembed::pairs_detail
