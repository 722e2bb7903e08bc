# frozen_string_literal: true

module ProcessShared
  # A fixed-size segment of shared memory, with the accessor family of +FFI::Pointer+. Created before +fork+,
  # it is shared with the children.
  #
  #   mem = ProcessShared::SharedMemory.new(:int)   # one C int (4 bytes)
  #   mem.put_int(0, 0)
  #   fork { mem.put_int(0, 42) }
  #   Process.wait
  #   mem.get_int(0)  # => 42
  #
  #   mem = ProcessShared::SharedMemory.new(1024)   # 1024 bytes
  #   fork { mem.write_object(["a", "b"]) }
  #   Process.wait
  #   mem.read_object # => ["a", "b"]
  #
  # == Creating
  # <tt>SharedMemory.new(size_or_type = 1, count = 1)</tt>: an Integer is a size in bytes (of +:uchar+); a
  # Symbol is an element type, with +count+ elements. A size or count below 1, or an unknown type, raises
  # +ArgumentError+; a size the system cannot map raises +Errno::ENOMEM+ (or +ArgumentError+ when it could
  # never be addressed). Readers: +size+ (bytes), +type+ (Symbol), +type_size+ (bytes), +count+, +address+.
  #
  # == Types
  # <tt>:char :uchar :short :ushort :int :uint :long :ulong :long_long :ulong_long :int8 :uint8 :int16
  # :uint16 :int32 :uint32 :int64 :uint64 :float :double :size_t :pointer</tt>, with this platform's C sizes.
  # Integer types take Integers only (+TypeError+ otherwise) and raise +RangeError+ for a value outside
  # the type; +:float+ and +:double+ take any real number (+:float+ rounds to the nearest single-precision
  # value and raises +RangeError+ for a finite value beyond its range; NaN and infinities are kept);
  # +:pointer+ reads back an Integer address and takes an Integer, +nil+ or an object responding to
  # +address+ (such as an +FFI::Pointer+).
  #
  # == Accessors (native)
  # For every type +T+ above:
  # - <tt>get_T(offset)</tt>, <tt>put_T(offset, value)</tt> (returns self)
  # - <tt>read_T</tt>, <tt>write_T(value)</tt>: the same at offset 0
  # - <tt>get_array_of_T(offset, n)</tt>, <tt>put_array_of_T(offset, array)</tt> (all or nothing)
  # - <tt>read_array_of_T(n)</tt>, <tt>write_array_of_T(array)</tt>
  # Bytes and strings (Strings read back are binary, ASCII-8BIT):
  # - <tt>get_bytes(offset, length)</tt>, <tt>put_bytes(offset, str, index = 0, length = nil)</tt>
  #   (+RangeError+ if +index+/+length+ fall outside +str+)
  # - <tt>read_bytes(length)</tt>, <tt>write_bytes(str, index = 0, length = nil)</tt>
  # - <tt>get_string(offset, length = nil)</tt>: the bytes up to the first NUL, within +length+ bytes (by
  #   default, to the end of the segment)
  # - <tt>put_string(offset, str)</tt>: the bytes of +str+ and a terminating NUL
  # - <tt>read_string(length = nil)</tt>: +length+ bytes, or up to the first NUL
  # - <tt>write_string(str, length = nil)</tt>: the bytes of +str+ (or its first +length+) at offset 0,
  #   without a NUL, as FFI does
  # - +clear+: zero every byte
  # Offsets are in bytes and need no alignment; values use the native byte order. Any access outside
  # <tt>0...size</tt> (negative offsets and lengths included) raises +IndexError+ and touches nothing.
  #
  # == Lifecycle
  # +close+ unmaps the segment in this process (idempotent; other processes keep theirs); any later access
  # raises {ClosedError}. +closed?+ tells. <tt>SharedMemory.open(...) { |mem| }</tt> closes it after the
  # block. +inspect+ shows the type, count and size.
  class SharedMemory
    extend Openable

    # What Marshal.load raises, besides TypeError and ArgumentError, for some malformed streams.
    MARSHAL_LOAD_ERRORS = [RegexpError, FrozenError, NoMethodError].freeze
    private_constant :MARSHAL_LOAD_ERRORS

    # Deepest nesting get_object reads back (as the native check counts it); put_object refuses deeper.
    MARSHAL_MAX_DEPTH = 1000
    private_constant :MARSHAL_MAX_DEPTH

    # @!method initialize(size_or_type = 1, count = 1)
    #   A new zero-filled segment (+name:+, +mode:+, +create:+ as in {Named}; an opener's size must match).
    #   @overload initialize(size = 1)
    #     @param size [Integer] bytes (of +:uchar+), at least 1
    #   @overload initialize(type, count = 1)
    #     @param type [Symbol] an element type (see Types)
    #     @param count [Integer] elements, at least 1
    #   @raise [ArgumentError] for a size or count below 1, a count with a size, an unknown type, or a size
    #     that could never be addressed
    #   @raise [TypeError] if +size_or_type+ is neither an Integer nor a Symbol
    #   @raise [Errno::ENOMEM] if the system cannot map that much

    # @!macro [new] ps.at
    #   @raise [IndexError] if the access does not lie within <tt>0...size</tt> (nothing is touched)
    #   @raise [TypeError] if an offset or count is not an Integer
    #   @raise [ClosedError] if closed
    # @!macro [new] ps.put
    #   @raise [IndexError] if the access does not lie within <tt>0...size</tt> (nothing is touched)
    #   @raise [TypeError] if the offset or a value is not of the accepted class
    #   @raise [RangeError] if a value does not fit the type (nothing is written)
    #   @raise [ClosedError] if closed

    # The accessor family, for every type (see Types): +get_T+, +put_T+, +read_T+, +write_T+,
    # +get_array_of_T+, +put_array_of_T+, +read_array_of_T+, +write_array_of_T+.

    # @!method get_char(offset)
    #   The +:char+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_char(offset, value)
    #   Stores +value+ as a +:char+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_char
    #   The +:char+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_char(value)
    #   Stores +value+ as a +:char+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_char(offset, n)
    #   +n+ consecutive +:char+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_char(offset, array)
    #   Stores each element of +array+ as a +:char+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_char(n)
    #   +n+ consecutive +:char+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_char(array)
    #   Stores each element of +array+ as a +:char+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_uchar(offset)
    #   The +:uchar+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_uchar(offset, value)
    #   Stores +value+ as a +:uchar+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_uchar
    #   The +:uchar+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_uchar(value)
    #   Stores +value+ as a +:uchar+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_uchar(offset, n)
    #   +n+ consecutive +:uchar+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_uchar(offset, array)
    #   Stores each element of +array+ as a +:uchar+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_uchar(n)
    #   +n+ consecutive +:uchar+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_uchar(array)
    #   Stores each element of +array+ as a +:uchar+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_short(offset)
    #   The +:short+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_short(offset, value)
    #   Stores +value+ as a +:short+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_short
    #   The +:short+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_short(value)
    #   Stores +value+ as a +:short+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_short(offset, n)
    #   +n+ consecutive +:short+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_short(offset, array)
    #   Stores each element of +array+ as a +:short+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_short(n)
    #   +n+ consecutive +:short+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_short(array)
    #   Stores each element of +array+ as a +:short+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_ushort(offset)
    #   The +:ushort+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_ushort(offset, value)
    #   Stores +value+ as a +:ushort+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_ushort
    #   The +:ushort+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_ushort(value)
    #   Stores +value+ as a +:ushort+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_ushort(offset, n)
    #   +n+ consecutive +:ushort+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_ushort(offset, array)
    #   Stores each element of +array+ as a +:ushort+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_ushort(n)
    #   +n+ consecutive +:ushort+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_ushort(array)
    #   Stores each element of +array+ as a +:ushort+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_int(offset)
    #   The +:int+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_int(offset, value)
    #   Stores +value+ as a +:int+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_int
    #   The +:int+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_int(value)
    #   Stores +value+ as a +:int+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_int(offset, n)
    #   +n+ consecutive +:int+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_int(offset, array)
    #   Stores each element of +array+ as a +:int+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_int(n)
    #   +n+ consecutive +:int+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_int(array)
    #   Stores each element of +array+ as a +:int+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_uint(offset)
    #   The +:uint+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_uint(offset, value)
    #   Stores +value+ as a +:uint+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_uint
    #   The +:uint+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_uint(value)
    #   Stores +value+ as a +:uint+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_uint(offset, n)
    #   +n+ consecutive +:uint+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_uint(offset, array)
    #   Stores each element of +array+ as a +:uint+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_uint(n)
    #   +n+ consecutive +:uint+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_uint(array)
    #   Stores each element of +array+ as a +:uint+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_long(offset)
    #   The +:long+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_long(offset, value)
    #   Stores +value+ as a +:long+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_long
    #   The +:long+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_long(value)
    #   Stores +value+ as a +:long+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_long(offset, n)
    #   +n+ consecutive +:long+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_long(offset, array)
    #   Stores each element of +array+ as a +:long+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_long(n)
    #   +n+ consecutive +:long+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_long(array)
    #   Stores each element of +array+ as a +:long+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_ulong(offset)
    #   The +:ulong+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_ulong(offset, value)
    #   Stores +value+ as a +:ulong+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_ulong
    #   The +:ulong+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_ulong(value)
    #   Stores +value+ as a +:ulong+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_ulong(offset, n)
    #   +n+ consecutive +:ulong+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_ulong(offset, array)
    #   Stores each element of +array+ as a +:ulong+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_ulong(n)
    #   +n+ consecutive +:ulong+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_ulong(array)
    #   Stores each element of +array+ as a +:ulong+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_long_long(offset)
    #   The +:long_long+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_long_long(offset, value)
    #   Stores +value+ as a +:long_long+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_long_long
    #   The +:long_long+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_long_long(value)
    #   Stores +value+ as a +:long_long+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_long_long(offset, n)
    #   +n+ consecutive +:long_long+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_long_long(offset, array)
    #   Stores each element of +array+ as a +:long_long+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_long_long(n)
    #   +n+ consecutive +:long_long+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_long_long(array)
    #   Stores each element of +array+ as a +:long_long+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_ulong_long(offset)
    #   The +:ulong_long+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_ulong_long(offset, value)
    #   Stores +value+ as a +:ulong_long+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_ulong_long
    #   The +:ulong_long+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_ulong_long(value)
    #   Stores +value+ as a +:ulong_long+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_ulong_long(offset, n)
    #   +n+ consecutive +:ulong_long+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_ulong_long(offset, array)
    #   Stores each element of +array+ as a +:ulong_long+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_ulong_long(n)
    #   +n+ consecutive +:ulong_long+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_ulong_long(array)
    #   Stores each element of +array+ as a +:ulong_long+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_int8(offset)
    #   The +:int8+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_int8(offset, value)
    #   Stores +value+ as a +:int8+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_int8
    #   The +:int8+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_int8(value)
    #   Stores +value+ as a +:int8+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_int8(offset, n)
    #   +n+ consecutive +:int8+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_int8(offset, array)
    #   Stores each element of +array+ as a +:int8+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_int8(n)
    #   +n+ consecutive +:int8+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_int8(array)
    #   Stores each element of +array+ as a +:int8+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_uint8(offset)
    #   The +:uint8+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_uint8(offset, value)
    #   Stores +value+ as a +:uint8+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_uint8
    #   The +:uint8+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_uint8(value)
    #   Stores +value+ as a +:uint8+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_uint8(offset, n)
    #   +n+ consecutive +:uint8+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_uint8(offset, array)
    #   Stores each element of +array+ as a +:uint8+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_uint8(n)
    #   +n+ consecutive +:uint8+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_uint8(array)
    #   Stores each element of +array+ as a +:uint8+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_int16(offset)
    #   The +:int16+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_int16(offset, value)
    #   Stores +value+ as a +:int16+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_int16
    #   The +:int16+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_int16(value)
    #   Stores +value+ as a +:int16+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_int16(offset, n)
    #   +n+ consecutive +:int16+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_int16(offset, array)
    #   Stores each element of +array+ as a +:int16+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_int16(n)
    #   +n+ consecutive +:int16+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_int16(array)
    #   Stores each element of +array+ as a +:int16+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_uint16(offset)
    #   The +:uint16+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_uint16(offset, value)
    #   Stores +value+ as a +:uint16+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_uint16
    #   The +:uint16+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_uint16(value)
    #   Stores +value+ as a +:uint16+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_uint16(offset, n)
    #   +n+ consecutive +:uint16+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_uint16(offset, array)
    #   Stores each element of +array+ as a +:uint16+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_uint16(n)
    #   +n+ consecutive +:uint16+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_uint16(array)
    #   Stores each element of +array+ as a +:uint16+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_int32(offset)
    #   The +:int32+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_int32(offset, value)
    #   Stores +value+ as a +:int32+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_int32
    #   The +:int32+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_int32(value)
    #   Stores +value+ as a +:int32+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_int32(offset, n)
    #   +n+ consecutive +:int32+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_int32(offset, array)
    #   Stores each element of +array+ as a +:int32+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_int32(n)
    #   +n+ consecutive +:int32+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_int32(array)
    #   Stores each element of +array+ as a +:int32+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_uint32(offset)
    #   The +:uint32+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_uint32(offset, value)
    #   Stores +value+ as a +:uint32+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_uint32
    #   The +:uint32+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_uint32(value)
    #   Stores +value+ as a +:uint32+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_uint32(offset, n)
    #   +n+ consecutive +:uint32+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_uint32(offset, array)
    #   Stores each element of +array+ as a +:uint32+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_uint32(n)
    #   +n+ consecutive +:uint32+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_uint32(array)
    #   Stores each element of +array+ as a +:uint32+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_int64(offset)
    #   The +:int64+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_int64(offset, value)
    #   Stores +value+ as a +:int64+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_int64
    #   The +:int64+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_int64(value)
    #   Stores +value+ as a +:int64+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_int64(offset, n)
    #   +n+ consecutive +:int64+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_int64(offset, array)
    #   Stores each element of +array+ as a +:int64+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_int64(n)
    #   +n+ consecutive +:int64+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_int64(array)
    #   Stores each element of +array+ as a +:int64+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_uint64(offset)
    #   The +:uint64+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_uint64(offset, value)
    #   Stores +value+ as a +:uint64+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_uint64
    #   The +:uint64+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_uint64(value)
    #   Stores +value+ as a +:uint64+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_uint64(offset, n)
    #   +n+ consecutive +:uint64+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_uint64(offset, array)
    #   Stores each element of +array+ as a +:uint64+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_uint64(n)
    #   +n+ consecutive +:uint64+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_uint64(array)
    #   Stores each element of +array+ as a +:uint64+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_float(offset)
    #   The +:float+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Float]
    #   @!macro ps.at
    # @!method put_float(offset, value)
    #   Stores +value+ as a +:float+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Numeric]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_float
    #   The +:float+ at offset 0.
    #   @return [Float]
    #   @!macro ps.at
    # @!method write_float(value)
    #   Stores +value+ as a +:float+ at offset 0.
    #   @param value [Numeric]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_float(offset, n)
    #   +n+ consecutive +:float+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Float>]
    #   @!macro ps.at
    # @!method put_array_of_float(offset, array)
    #   Stores each element of +array+ as a +:float+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Numeric>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_float(n)
    #   +n+ consecutive +:float+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Float>]
    #   @!macro ps.at
    # @!method write_array_of_float(array)
    #   Stores each element of +array+ as a +:float+, from offset 0 (all or nothing).
    #   @param array [Array<Numeric>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_double(offset)
    #   The +:double+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Float]
    #   @!macro ps.at
    # @!method put_double(offset, value)
    #   Stores +value+ as a +:double+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Numeric]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_double
    #   The +:double+ at offset 0.
    #   @return [Float]
    #   @!macro ps.at
    # @!method write_double(value)
    #   Stores +value+ as a +:double+ at offset 0.
    #   @param value [Numeric]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_double(offset, n)
    #   +n+ consecutive +:double+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Float>]
    #   @!macro ps.at
    # @!method put_array_of_double(offset, array)
    #   Stores each element of +array+ as a +:double+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Numeric>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_double(n)
    #   +n+ consecutive +:double+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Float>]
    #   @!macro ps.at
    # @!method write_array_of_double(array)
    #   Stores each element of +array+ as a +:double+, from offset 0 (all or nothing).
    #   @param array [Array<Numeric>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_size_t(offset)
    #   The +:size_t+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_size_t(offset, value)
    #   Stores +value+ as a +:size_t+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_size_t
    #   The +:size_t+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_size_t(value)
    #   Stores +value+ as a +:size_t+ at offset 0.
    #   @param value [Integer]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_size_t(offset, n)
    #   +n+ consecutive +:size_t+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_size_t(offset, array)
    #   Stores each element of +array+ as a +:size_t+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_size_t(n)
    #   +n+ consecutive +:size_t+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_size_t(array)
    #   Stores each element of +array+ as a +:size_t+, from offset 0 (all or nothing).
    #   @param array [Array<Integer>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_pointer(offset)
    #   The +:pointer+ at byte +offset+.
    #   @param offset [Integer]
    #   @return [Integer]
    #   @!macro ps.at
    # @!method put_pointer(offset, value)
    #   Stores +value+ as a +:pointer+ at byte +offset+.
    #   @param offset [Integer]
    #   @param value [Integer, nil, #address]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_pointer
    #   The +:pointer+ at offset 0.
    #   @return [Integer]
    #   @!macro ps.at
    # @!method write_pointer(value)
    #   Stores +value+ as a +:pointer+ at offset 0.
    #   @param value [Integer, nil, #address]
    #   @return [self]
    #   @!macro ps.put
    # @!method get_array_of_pointer(offset, n)
    #   +n+ consecutive +:pointer+ values from byte +offset+.
    #   @param offset [Integer]
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method put_array_of_pointer(offset, array)
    #   Stores each element of +array+ as a +:pointer+, from byte +offset+ (all or nothing).
    #   @param offset [Integer]
    #   @param array [Array<Integer, nil, #address>]
    #   @return [self]
    #   @!macro ps.put
    # @!method read_array_of_pointer(n)
    #   +n+ consecutive +:pointer+ values from offset 0.
    #   @param n [Integer]
    #   @return [Array<Integer>]
    #   @!macro ps.at
    # @!method write_array_of_pointer(array)
    #   Stores each element of +array+ as a +:pointer+, from offset 0 (all or nothing).
    #   @param array [Array<Integer, nil, #address>]
    #   @return [self]
    #   @!macro ps.put

    # @!method get_bytes(offset, length)
    #   +length+ bytes from byte +offset+.
    #   @param offset [Integer]
    #   @param length [Integer]
    #   @return [String] binary (ASCII-8BIT)
    #   @!macro ps.at

    # @!method put_bytes(offset, str, index = 0, length = nil)
    #   Writes +length+ bytes of +str+ from its byte +index+ (by default, all of it) at byte +offset+.
    #   @param offset [Integer]
    #   @param str [String]
    #   @param index [Integer]
    #   @param length [Integer, nil] nil: to the end of +str+
    #   @return [self]
    #   @raise [RangeError] if +index+ or +length+ fall outside +str+
    #   @!macro ps.at

    # @!method read_bytes(length)
    #   +length+ bytes from offset 0.
    #   @param length [Integer]
    #   @return [String] binary (ASCII-8BIT)
    #   @!macro ps.at

    # @!method write_bytes(str, index = 0, length = nil)
    #   {#put_bytes} at offset 0.
    #   @param str [String]
    #   @param index [Integer]
    #   @param length [Integer, nil]
    #   @return [self]
    #   @raise [RangeError] if +index+ or +length+ fall outside +str+
    #   @!macro ps.at

    # @!method get_string(offset, length = nil)
    #   The bytes from byte +offset+ up to the first NUL, within +length+ bytes (nil: to the end of the segment).
    #   @param offset [Integer]
    #   @param length [Integer, nil]
    #   @return [String] binary (ASCII-8BIT), without the NUL
    #   @!macro ps.at

    # @!method put_string(offset, str)
    #   Writes the bytes of +str+ and a terminating NUL at byte +offset+.
    #   @param offset [Integer]
    #   @param str [String]
    #   @return [self]
    #   @!macro ps.at

    # @!method read_string(length = nil)
    #   @overload read_string
    #     The bytes from offset 0 up to the first NUL (or the end of the segment).
    #     @return [String] binary (ASCII-8BIT), without the NUL
    #   @overload read_string(length)
    #     +length+ bytes from offset 0, NULs included.
    #     @param length [Integer]
    #     @return [String] binary (ASCII-8BIT)
    #   @!macro ps.at

    # @!method write_string(str, length = nil)
    #   Writes the bytes of +str+ (or its first +length+) at offset 0, without a NUL, as FFI does.
    #   @param str [String]
    #   @param length [Integer, nil]
    #   @return [self]
    #   @raise [RangeError] if +length+ is beyond +str+
    #   @!macro ps.at

    # @!method clear
    #   Zeroes every byte.
    #   @return [self]
    #   @raise [ClosedError] if closed

    # @!method size
    #   @return [Integer] the size in bytes (also when closed)

    # @!method type
    #   @return [Symbol] the element type (+:uchar+ for a segment made with a size)

    # @!method type_size
    #   @return [Integer] the element type's size in bytes

    # @!method count
    #   @return [Integer] the number of elements (+size+ / +type_size+)

    # @!method address
    #   @return [Integer] the segment's address in this process (see {#to_ptr})
    #   @raise [ClosedError] if closed

    # @!method close
    #   Unmaps the segment in this process (idempotent); other processes keep theirs. Later accesses raise
    #   {ClosedError}.
    #   @return [nil]

    # @!method closed?
    #   @return [Boolean] whether {#close} was called in this process

    # @!method inspect
    #   The type, count and size (and whether it is closed).
    #   @return [String]

    # Store +obj+ at +offset+ with +Marshal+: an 8-byte header (+"PSM1"+ and the dump's length, u32
    # little-endian) followed by the dump.
    # @raise [ClosedError] if the segment is closed (checked before +obj+ is dumped)
    # @raise [IndexError] if it does not fit between +offset+ and the end (nothing is written then)
    # @raise [TypeError] if +obj+ cannot be marshalled (nothing is written)
    # @raise [ArgumentError] if +obj+ is nested too deeply for {#get_object} to read it back (nothing is
    #   written; see {#get_object})
    # @return [self]
    def put_object(offset, obj)
      check_open
      _put_object_bytes(offset, Marshal.dump(obj, MARSHAL_MAX_DEPTH))
    end

    # The object stored at +offset+ by {#put_object}. Without a header there, the bytes from +offset+ to
    # the end are read as a raw +Marshal+ stream (as written by <tt>put_bytes(offset, Marshal.dump(obj))</tt>).
    #
    # Whatever the bytes are, this raises and never crashes or exhausts memory: bytes that are not a Marshal
    # stream raise +TypeError+ or +ArgumentError+, as +Marshal.load+ does. Where +Marshal.load+ itself would
    # raise something else for them (+RegexpError+ for a Regexp that does not compile, +FrozenError+ for
    # instance variables on +nil+ or an Integer, +NoMethodError+ for a BasicObject used as a Hash key), this
    # raises +ArgumentError+ (with the original as its +cause+); what a +marshal_load+ or +_load+ written in
    # Ruby raises passes unchanged. Before +Marshal.load+ sees them, the bytes are copied and checked, and
    # +ArgumentError+ is raised for a count (of Array or Hash elements, instance variables, Struct members)
    # larger than the bytes left can hold ("marshal data too short": Ruby 3.1 would first try to allocate for
    # it), and for nesting deeper than 1000 levels (each level inside a Hash key counting as 6), which could
    # overflow the stack of a thread or fiber. (A crafted stream can still name any loaded class and run its
    # +_load+/+marshal_load+, as with any +Marshal.load+.)
    # @raise [IndexError] if +offset+ is outside <tt>0..size</tt>
    # @raise [TypeError, ArgumentError] if the bytes are not a Marshal stream
    def get_object(offset)
      stream = _get_object_bytes(offset)
      begin
        Marshal.load(stream)
      rescue *MARSHAL_LOAD_ERRORS => e
        # Raised by Marshal.load's own code (its frame is on top), not by a marshal_load/_load hook. The
        # base label is "load" on every Ruby (3.4 labels the frame "Marshal.load", earlier ones "load").
        top = e.backtrace_locations&.first
        raise unless top&.base_label == "load" && ["<internal:marshal>", __FILE__].include?(top.path)

        raise ArgumentError, "marshal data does not describe a valid object (#{e.class}: #{e.message})"
      end
    end

    # {#put_object} at offset 0.
    def write_object(obj)
      put_object(0, obj)
    end

    # {#get_object} at offset 0.
    def read_object
      get_object(0)
    end

    # An +FFI::Pointer+ to the segment, bounded to its size. Needs the +ffi+ gem (<tt>require "ffi"</tt>).
    # The pointer is only valid until {#close}.
    # @raise [NotImplementedError] if FFI is not loaded
    # @raise [ClosedError] if the segment is closed
    def to_ptr
      check_open
      unless defined?(::FFI::Pointer)
        raise NotImplementedError, "#{self.class}#to_ptr needs the ffi gem: require \"ffi\" first"
      end

      # The pointer (and every slice or offset of it, which references its parent) keeps this object, and
      # so the mapping, alive: reading it after the SharedMemory is dropped and collected is safe.
      ::FFI::Pointer.new(address).slice(0, size).tap { |ptr| ptr.instance_variable_set(:@memory, self) }
    end

    private

    def check_open
      raise ClosedError, "#{self.class} is closed" if closed?
    end
  end

  # A fixed-length array of one element type in shared memory.
  #
  #   ary = ProcessShared::SharedArray.new(:int, 3)
  #   fork { ary[0] = 1; ary[-1] = 3 }
  #   Process.wait
  #   ary.to_a # => [1, 0, 3]
  #
  # <tt>SharedArray.new(type = :int, count = 1)</tt>. Native: <tt>[](i)</tt> and <tt>[]=(i, value)</tt>
  # (a negative +i+ counts from the end; out of range raises +IndexError+, a non-Integer +TypeError+),
  # +to_a+, +length+ (elements; +size+ stays the size in bytes, as for {SharedMemory}). It is +Enumerable+,
  # and still has every {SharedMemory} accessor.
  class SharedArray < SharedMemory
    include CappedEnumerable

    # Yields each element in order; an Enumerator without a block.
    # @return [self]
    def each
      return enum_for(:each) { length } unless block_given?

      i = 0
      n = length
      while i < n
        yield self[i]
        i += 1
      end
      self
    end

    # @!method initialize(type = :int, count = 1)
    #   A new zero-filled array (+name:+, +mode:+, +create:+ as in {Named}; an opener's size must match).
    #   @param type [Symbol, Integer] the element type (see {SharedMemory}'s Types), or, as for {SharedMemory}, a
    #     size in bytes (of +:uchar+)
    #   @param count [Integer] at least 1 (only with a type)
    #   @raise [ArgumentError] for a count below 1, a count with a size, or an unknown type
    #   @raise [TypeError] if +type+ is neither a Symbol nor an Integer
    #   @raise [Errno::ENOMEM] if the system cannot map that much

    # @!method [](index)
    #   @param index [Integer] negative counts from the end
    #   @return [Integer, Float] element +index+
    #   @raise [IndexError] if +index+ is out of range
    #   @raise [TypeError] if it is not an Integer
    #   @raise [ClosedError] if closed

    # @!method []=(index, value)
    #   Sets element +index+.
    #   @param index [Integer] negative counts from the end
    #   @param value [Integer, Float, nil] as +put_T+ takes it for the element type
    #   @return [Object] +value+
    #   @raise [IndexError] if +index+ is out of range
    #   @raise [TypeError] if +index+ or +value+ is not of the accepted class
    #   @raise [RangeError] if +value+ does not fit the type
    #   @raise [ClosedError] if closed

    # @!method to_a
    #   @return [Array<Integer, Float>] every element, in order
    #   @raise [ClosedError] if closed

    # @!method length
    #   @return [Integer] the number of elements (+size+ stays the size in bytes)
  end
end
