// Enums from one list. A family writes an enum's values once, as an X-macro list of X(Value, "name") entries, and
// FASTGAN_DEFINE_ENUM makes from it the enum, its names (for parse_name and its "one of ..." message, through
// name_table<E>()) and the count that dispatch_enum needs: a new value is one line of the list, and the parser,
// the message and every dispatch follow. Host and device.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

// A list's rows may carry more columns after the name (a family's table, e.g. FASTGAN_DISTS): these ignore them.
#define FASTGAN_ENUM_VALUE_(value, name, ...) value,
#define FASTGAN_ENUM_NAME_(value, name, ...) std::string_view(name),

// enum class E : int8_t {values}, and (found by argument-dependent lookup) enum_names(E) -> std::array of names.
#define FASTGAN_DEFINE_ENUM(E, LIST)                                               \
  enum class E : int8_t { LIST(FASTGAN_ENUM_VALUE_) };                             \
  constexpr auto enum_names(E) { return std::array{LIST(FASTGAN_ENUM_NAME_)}; }

namespace fastgan {

// The names an enum-valued string argument accepts, in the order messages list them (parse_name, checks.h).
template <class E, size_t N>
using NameTable = std::array<std::pair<std::string_view, E>, N>;

template <class E>
constexpr int enum_count() {
  return static_cast<int>(enum_names(E{}).size());
}

// The (name, value) table of an enum defined by FASTGAN_DEFINE_ENUM, for parse_name.
template <class E>
constexpr NameTable<E, enum_count<E>()> name_table() {
  NameTable<E, enum_count<E>()> table{};
  const auto names = enum_names(E{});
  for (int i = 0; i < enum_count<E>(); ++i) table[i] = {names[i], static_cast<E>(i)};
  return table;
}

// fn(std::integral_constant<E, v>{}) for v == value: the one switch behind every kernel's compile-time choice of
// an enum value. value must be one of E's (a parsed one always is).
template <class E, int I = 0, class Fn>
decltype(auto) dispatch_enum(E value, Fn&& fn) {
  if constexpr (I + 1 == enum_count<E>()) {
    return fn(std::integral_constant<E, static_cast<E>(I)>{});
  } else {
    if (static_cast<int>(value) == I) return fn(std::integral_constant<E, static_cast<E>(I)>{});
    return dispatch_enum<E, I + 1>(value, std::forward<Fn>(fn));
  }
}

}  // namespace fastgan
