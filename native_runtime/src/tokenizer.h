// The byte-level BPE tokenizer edgekit trains (edgekit/model_zoo/text.py), read from tokenizer.json:
// HuggingFace `tokenizers` model BPE, pre-tokenizer ByteLevel (GPT-2 split regex), decoder ByteLevel,
// special tokens split out first. Gives the same ids as `tokenizers` (tests/test_native_llm.py).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace ek {

class Tokenizer {
 public:
  // Reads tokenizer.json; false with `error` naming the unsupported part for any other tokenizer kind.
  bool load(const std::string &path, std::string &error);
  // UTF-8 text -> ids; false with `error` when the text is not valid UTF-8.
  bool encode(const std::string &text, std::vector<int64_t> &ids, std::string &error) const;
  // ids -> text, special tokens skipped, invalid UTF-8 replaced by U+FFFD (as `tokenizers` decode()).
  std::string decode(const std::vector<int64_t> &ids) const;
  int64_t token_to_id(const std::string &token) const;  // -1 when absent
  size_t vocab_size() const { return id_to_token_.size(); }

 private:
  struct Added {
    std::string content;
    int64_t id;
    bool special;
  };
  void encode_plain(const std::string &text, std::vector<int64_t> &ids) const;
  void bpe(const std::string &word_bytes, std::vector<int64_t> &ids) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, std::pair<int32_t, int64_t>> merges_;  // (a<<32|b) -> (rank, merged id)
  std::vector<Added> added_;                                         // longest first
  std::vector<bool> special_;                                        // by id
  std::string byte_char_[256];                                       // byte -> its printable char (UTF-8)
  std::unordered_map<uint32_t, uint8_t> char_byte_;                  // inverse
  int64_t byte_id_[256];                                             // byte -> vocab id of its char (-1)
  bool add_prefix_space_ = false;
};

// A whole file as bytes; false with `error` when it cannot be read.
bool read_text_file(const std::string &path, std::string &out, std::string &error);

}  // namespace ek
