# frozen_string_literal: true

require "monitor"

# Bad input never crashes and loses nothing: every public method, given wrong types, out-of-range values, huge
# sizes, bad timeouts or a closed receiver, raises the documented exception and leaves the object as it was,
# still working. Table-driven: each group lists its calls and the exception each must raise.

# A Numeric (so it is taken for a timeout or a float) whose #to_f first runs the given block (which may close
# the receiver, or raise) and then returns `value`.
class BadInputNumeric < Numeric
  def initialize(value = 0.0, &action)
    super()
    @value = value
    @action = action
  end

  def to_f
    @action&.call
    @value
  end
end

RSpec.describe "Bad input" do
  ps = ProcessShared
  int_ranges = {
    char: [-2**7, 2**7 - 1], uchar: [0, 2**8 - 1], short: [-2**15, 2**15 - 1], ushort: [0, 2**16 - 1],
    int: [-2**31, 2**31 - 1], uint: [0, 2**32 - 1], long: [-2**63, 2**63 - 1], ulong: [0, 2**64 - 1],
    long_long: [-2**63, 2**63 - 1], ulong_long: [0, 2**64 - 1], int8: [-2**7, 2**7 - 1], uint8: [0, 2**8 - 1],
    int16: [-2**15, 2**15 - 1], uint16: [0, 2**16 - 1], int32: [-2**31, 2**31 - 1], uint32: [0, 2**32 - 1],
    int64: [-2**63, 2**63 - 1], uint64: [0, 2**64 - 1], size_t: [0, 2**64 - 1], pointer: [0, 2**64 - 1]
  }
  types = int_ranges.keys + %i[float double]
  non_integers = [nil, true, "1", :one, 1.0, Rational(1, 2), Complex(1, 0), [1], {}, Object.new]
  non_reals = [nil, true, "1.5", :one, Complex(1, 1), [1.0], {}, Object.new]
  # Negative, NaN or non-numeric timeouts: ArgumentError, before anything is waited for or changed.
  bad_timeouts = [-1, -0.001, -2**64, -Float::INFINITY, Float::NAN, Rational(-1, 2), Complex(1, 0), "1", :one, true,
                  [1], {}, Object.new]

  # The bytes of a segment, or :closed.
  snapshot = ->(mem) { mem.closed? ? :closed : mem.get_bytes(0, mem.size) }

  def raise_one_of(*classes)
    raise_error { |e| expect(classes).to include(e.class), "expected one of #{classes}, got #{e.inspect}" }
  end

  describe ProcessShared::SharedMemory do
    size = 64
    pattern = (0...size).map { |i| (i * 37 + 11) % 256 }.pack("C*")
    let(:mem) { ps::SharedMemory.new(size).tap { |m| m.put_bytes(0, pattern) } }

    # Expects the call to raise one of `classes` and to leave every byte as it was.
    def expect_unchanged(mem, *classes, &call)
      before = mem.get_bytes(0, mem.size)
      expect(&call).to raise_one_of(*classes)
      expect(mem.get_bytes(0, mem.size)).to eq(before), "the failed call changed the memory"
    end

    it "still works after every failure below" do
      expect(mem.put_int(0, 7).get_int(0)).to eq(7)
    end

    describe ".new" do
      [
        [[0], ArgumentError], [[-1], ArgumentError], [[-2**64], ArgumentError], [[:int, 0], ArgumentError],
        [[:int, -1], ArgumentError], [[:nope], ArgumentError], [[16, 2], ArgumentError], [[1, 2, 3], ArgumentError],
        [["16"], TypeError], [[1.5], TypeError], [[nil], TypeError], [[Rational(4)], TypeError], [[[4]], TypeError],
        [[:int, 1.5], TypeError], [[:int, "2"], TypeError], [%i[int int], TypeError]
      ].each do |args, error|
        it "raises #{error} for new(#{args.map(&:inspect).join(", ")})" do
          expect { ps::SharedMemory.new(*args) }.to raise_error(error)
          expect { ps::SharedArray.new(*args) }.to raise_error(error) unless args == [16, 2]
        end
      end

      it "raises ArgumentError or Errno::ENOMEM for sizes no system can map" do
        [[2**200], [2**64], [2**63], [2**63 - 1], [2**62], [2**47], [:double, 2**61], [:int64, 2**62], [:int, 2**100],
         [:char, 2**63 - 1]].each do |args|
          expect { ps::SharedMemory.new(*args) }.to raise_one_of(ArgumentError, Errno::ENOMEM)
          expect { ps::SharedArray.new(*args) }.to raise_one_of(ArgumentError, Errno::ENOMEM)
        end
      end
    end

    types.each do |type|
      describe "the #{type} accessors" do
        let(:width) { ps::SharedMemory.new(type).size }

        it "raise IndexError for offsets outside the segment, touching nothing" do
          [-1, -2**64, size - width + 1, size, 2**64, 2**200].each do |off|
            expect { mem.public_send("get_#{type}", off) }.to raise_error(IndexError)
            expect_unchanged(mem, IndexError) { mem.public_send("put_#{type}", off, 1) }
            expect { mem.public_send("get_array_of_#{type}", off, 1) }.to raise_error(IndexError)
            expect_unchanged(mem, IndexError) { mem.public_send("put_array_of_#{type}", off, [1]) }
          end
        end

        it "raise IndexError for element counts that do not fit, or are negative" do
          n = size / width
          [-1, n + 1, 2**62, 2**64, -2**64].each do |count|
            expect { mem.public_send("get_array_of_#{type}", 0, count) }.to raise_error(IndexError)
            expect { mem.public_send("read_array_of_#{type}", count) }.to raise_error(IndexError)
          end
          expect_unchanged(mem, IndexError) { mem.public_send("put_array_of_#{type}", 0, [1] * (n + 1)) }
          expect_unchanged(mem, IndexError) { mem.public_send("write_array_of_#{type}", [1] * (n + 1)) }
          expect_unchanged(mem, IndexError) { mem.public_send("put_array_of_#{type}", width, [1] * n) }
        end

        it "raise TypeError for offsets and counts that are not Integers" do
          non_integers.each do |bad|
            expect { mem.public_send("get_#{type}", bad) }.to raise_error(TypeError)
            expect_unchanged(mem, TypeError) { mem.public_send("put_#{type}", bad, 1) }
            expect { mem.public_send("get_array_of_#{type}", bad, 1) }.to raise_error(TypeError)
            expect { mem.public_send("get_array_of_#{type}", 0, bad) }.to raise_error(TypeError)
            expect { mem.public_send("read_array_of_#{type}", bad) }.to raise_error(TypeError)
          end
        end

        it "raise TypeError for values of the wrong kind, writing nothing (arrays: all or nothing)" do
          wrong = if %i[float double].include?(type) then non_reals
                  elsif type == :pointer then non_integers - [nil] # nil is NULL
                  else
                    non_integers
                  end
          wrong.each do |bad|
            expect_unchanged(mem, TypeError) { mem.public_send("put_#{type}", 0, bad) }
            expect_unchanged(mem, TypeError) { mem.public_send("write_#{type}", bad) }
            expect_unchanged(mem, TypeError) { mem.public_send("put_array_of_#{type}", 0, [1, 2, bad]) }
            expect_unchanged(mem, TypeError) { mem.public_send("write_array_of_#{type}", [1, bad, 2]) }
          end
          [nil, 1, "1, 2", { 1 => 2 }].each do |not_array|
            expect_unchanged(mem, TypeError) { mem.public_send("put_array_of_#{type}", 0, not_array) }
          end
        end

        if int_ranges.key?(type)
          it "raise RangeError for values outside the type, writing nothing" do
            lo, hi = int_ranges.fetch(type)
            [lo - 1, hi + 1, 2**200, -2**200].each do |bad|
              expect_unchanged(mem, RangeError) { mem.public_send("put_#{type}", 0, bad) }
              expect_unchanged(mem, RangeError) { mem.public_send("write_#{type}", bad) }
              expect_unchanged(mem, RangeError) { mem.public_send("put_array_of_#{type}", 0, [lo, hi, bad]) }
            end
          end
        end

        it "raise ArgumentError for a wrong number of arguments" do
          expect { mem.public_send("get_#{type}") }.to raise_error(ArgumentError)
          expect_unchanged(mem, ArgumentError) { mem.public_send("put_#{type}", 0) }
          expect_unchanged(mem, ArgumentError) { mem.public_send("put_#{type}", 0, 1, 2) }
          expect { mem.public_send("read_#{type}", 0) }.to raise_error(ArgumentError)
          expect { mem.public_send("get_array_of_#{type}", 0) }.to raise_error(ArgumentError)
        end
      end
    end

    it "raises RangeError for a :float beyond single precision, writing nothing" do
      [1e39, -1e300, Float::MAX].each do |bad|
        expect_unchanged(mem, RangeError) { mem.put_float(0, bad) }
        expect_unchanged(mem, RangeError) { mem.put_array_of_float(0, [1.0, bad]) }
      end
    end

    it "keeps NaN and the infinities (they are values, not errors)" do
      mem.put_double(0, Float::NAN).put_double(8, -Float::INFINITY).put_float(16, Float::INFINITY)
      expect([mem.get_double(0).nan?, mem.get_double(8), mem.get_float(16)]).to eq([true, -Float::INFINITY,
                                                                                    Float::INFINITY])
    end

    describe "bytes and strings" do
      it "raise IndexError for ranges outside the segment, touching nothing" do
        [[-1, 1], [0, -1], [0, size + 1], [size, 1], [size + 1, 0], [2**64, 1], [1, 2**64],
         [-2**70, 2**70]].each do |o, n|
          expect { mem.get_bytes(o, n) }.to raise_error(IndexError), [o, n].inspect
        end
        [-1, size + 1, 2**64].each { |o| expect { mem.get_string(o) }.to raise_error(IndexError) }
        [[0, -1], [0, size + 1], [size - 1, 2]].each do |o, n|
          expect { mem.get_string(o, n) }.to raise_error(IndexError)
        end
        [-1, size + 1, 2**64].each do |n|
          expect { mem.read_bytes(n) }.to raise_error(IndexError)
          expect { mem.read_string(n) }.to raise_error(IndexError)
        end
        expect_unchanged(mem, IndexError) { mem.put_bytes(-1, "x") }
        expect_unchanged(mem, IndexError) { mem.put_bytes(size - 1, "xy") }
        expect_unchanged(mem, IndexError) { mem.put_bytes(2**64, "x") }
        expect_unchanged(mem, IndexError) { mem.write_bytes("x" * (size + 1)) }
        expect_unchanged(mem, IndexError) { mem.put_string(size - 1, "x") } # "x" and its NUL
        expect_unchanged(mem, IndexError) { mem.put_string(-1, "") }
        expect_unchanged(mem, IndexError) { mem.write_string("y" * (size + 1)) }
      end

      it "raise RangeError for index/length outside the source String, touching nothing" do
        [[4], [-1], [0, 4], [1, 3], [0, -1], [2**64], [0, 2**64]].each do |extra|
          expect_unchanged(mem, RangeError) { mem.put_bytes(0, "abc", *extra) }
          expect_unchanged(mem, RangeError) { mem.write_bytes("abc", *extra) }
        end
        expect_unchanged(mem, RangeError) { mem.write_string("abc", 4) }
        expect_unchanged(mem, RangeError) { mem.write_string("abc", -1) }
      end

      it "raise TypeError for a non-String source or a non-Integer offset/index/length" do
        [nil, 1, :sym, ["x"], Object.new].each do |bad|
          expect_unchanged(mem, TypeError) { mem.put_bytes(0, bad) }
          expect_unchanged(mem, TypeError) { mem.put_string(0, bad) }
          expect_unchanged(mem, TypeError) { mem.write_string(bad) }
          expect_unchanged(mem, TypeError) { mem.write_bytes(bad) }
        end
        (non_integers - [nil]).each do |bad|
          expect { mem.get_bytes(bad, 1) }.to raise_error(TypeError)
          expect { mem.get_bytes(0, bad) }.to raise_error(TypeError)
          expect { mem.get_string(bad) }.to raise_error(TypeError)
          expect { mem.get_string(0, bad) }.to raise_error(TypeError)
          expect { mem.read_bytes(bad) }.to raise_error(TypeError)
          expect { mem.read_string(bad) }.to raise_error(TypeError)
          expect_unchanged(mem, TypeError) { mem.put_bytes(bad, "x") }
          expect_unchanged(mem, TypeError) { mem.put_bytes(0, "x", bad) }
          expect_unchanged(mem, TypeError) { mem.put_bytes(0, "x", 0, bad) }
          expect_unchanged(mem, TypeError) { mem.put_string(bad, "x") }
          expect_unchanged(mem, TypeError) { mem.write_string("x", bad) }
        end
      end

      it "raise ArgumentError for a wrong number of arguments" do
        expect_unchanged(mem, ArgumentError) { mem.put_bytes(0) }
        expect_unchanged(mem, ArgumentError) { mem.put_bytes(0, "x", 0, 1, 2) }
        expect_unchanged(mem, ArgumentError) { mem.write_bytes }
        expect_unchanged(mem, ArgumentError) { mem.write_string("x", 1, 2) }
        expect { mem.get_string }.to raise_error(ArgumentError)
        expect { mem.get_string(0, 1, 2) }.to raise_error(ArgumentError)
        expect { mem.read_string(1, 2) }.to raise_error(ArgumentError)
        expect { mem.get_bytes(0) }.to raise_error(ArgumentError)
        expect_unchanged(mem, ArgumentError) { mem.clear(0) }
      end
    end

    describe "objects" do
      it "raise IndexError when the object does not fit, or for an offset outside, writing nothing" do
        expect_unchanged(mem, IndexError) { mem.write_object("x" * size) }
        expect_unchanged(mem, IndexError) { mem.put_object(size - 8, 1) } # the 8-byte header alone fills it
        [-1, size + 1, 2**64, -2**64].each do |off|
          expect_unchanged(mem, IndexError) { mem.put_object(off, 1) }
          expect { mem.get_object(off) }.to raise_error(IndexError)
        end
      end

      it "raise TypeError for an unmarshallable object or a non-Integer offset, writing nothing" do
        [proc {}, Object.new.tap { |o| o.define_singleton_method(:x) {} }, $stdout, ps::Mutex.new, Thread.current,
         binding].each do |bad|
          expect_unchanged(mem, TypeError) { mem.write_object(bad) }
          expect_unchanged(mem, TypeError) { mem.put_object(0, [1, bad]) }
        end
        (non_integers - [nil]).each do |bad|
          expect_unchanged(mem, TypeError) { mem.put_object(bad, 1) }
          expect { mem.get_object(bad) }.to raise_error(TypeError)
        end
      end

      it "raise ArgumentError for an object nested too deeply to be read back safely, writing nothing" do
        big = ps::SharedMemory.new(64 * 1024)
        deep = nil
        1001.times { deep = [deep] }
        expect_unchanged(big, ArgumentError) { big.write_object(deep) }
        ok = nil
        999.times { ok = [ok] }
        expect(big.write_object(ok).read_object).to eq(ok)
        key = 1
        200.times { key = { key => 1 } } # hashing a key recurses through it: deep keys count more
        expect_unchanged(big, ArgumentError) { big.write_object(key) }
      end

      it "propagates what marshal_dump raises, writing nothing" do
        bad = Object.new
        def bad.marshal_dump = raise(IOError, "nope")
        expect_unchanged(mem, IOError) { mem.write_object(bad) }
      end

      describe "reading garbage" do
        let(:big) { ps::SharedMemory.new(4096) }
        # Each: a name and the bytes written at offset 0 (the rest of the segment is zero).
        garbage = {
          "zeros" => "",
          "text" => "not marshal data at all",
          "a wrong version" => "\x04\x09[\x00",
          "only the version" => "\x04\x08",
          "a truncated array" => "\x04\x08[\x7f",
          "an unknown type byte" => "\x04\x08\xfe",
          "a symbol link to nothing" => "\x04\x08;\x20",
          "an object link to nothing" => "\x04\x08@\x20",
          "an undefined class" => "\x04\x08o:\x10NoSuchClass99\x00",
          "a bad symbol" => "\x04\x08o\x00",
          "a string longer than the data" => "\x04\x08\"\x04\xff\xff\xff\x7f",
          "an Array claiming 2**31 elements" => "\x04\x08[\x04\xff\xff\xff\x7f",
          "a Hash claiming 2**30 entries" => "\x04\x08{\x04\xff\xff\xff\x3f",
          "a Hash with a default claiming 2**30 entries" => "\x04\x08}\x04\xff\xff\xff\x3f",
          "a Hash of negative size" => "\x04\x08{\xfa",
          "an object claiming 2**30 instance variables" => "\x04\x08o:\x0bObject\x04\xff\xff\xff\x3f",
          "a Struct claiming 2**30 members" => "\x04\x08S:\x0bStruct\x04\xff\xff\xff\x3f",
          "a Bignum longer than the data" => "\x04\x08l+\x04\xff\xff\xff\x3f",
          # Ruby 3.3 reads a Bignum of negative length as 0 and goes on, to the Hash of 2**31 - 1.
          "a negative Bignum length, then a Hash claiming 2**31 - 1 entries" =>
            "\x04\x08[\x07l-\xfa{\x04\xff\xff\xff\x7f",
          "nested Arrays each claiming all the rest" => "\x04\x08#{"[\x02\xf0\x0f" * 40}",
          "Arrays nested 2000 deep" => "\x04\x08#{"[\x06" * 2000}0",
          "Hash keys nested 1000 deep" => "\x04\x08#{"{\x06" * 1000}0#{"0" * 1000}",
          "a header claiming more bytes than follow" => "PSM1#{[4089].pack("V")}",
          "a header claiming 4 GiB" => "PSM1#{[2**32 - 1].pack("V")}",
          "a header and an empty payload" => "PSM1#{[0].pack("V")}",
          "a header and a truncated payload" => "PSM1#{[3].pack("V")}\x04\x08[\x0a",
          "a header and a Hash claiming 2**30 entries" => "PSM1#{[7].pack("V")}\x04\x08{\x04\xff\xff\xff\x3f"
        }
        garbage.each do |name, bytes|
          it "raises TypeError or ArgumentError for #{name}, quickly, and the segment still works" do
            big.put_bytes(0, bytes.b)
            start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
            expect { big.read_object }.to raise_one_of(TypeError, ArgumentError)
            expect { big.get_object(0) }.to raise_one_of(TypeError, ArgumentError)
            expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - start).to be < 0.5
            expect(big.get_bytes(0, bytes.bytesize)).to eq(bytes.b) # reading changed nothing
            expect(big.write_object([name]).read_object).to eq([name])
          end
        end

        it "raises TypeError, ArgumentError or IndexError for random bytes at any offset, never anything else" do
          rng = Random.new(20_240_601)
          raised = Hash.new(0)
          2000.times do |i|
            prefix = ["", "\x04\x08", "PSM1#{[rng.rand(4100)].pack("V")}", "PSM1#{[rng.rand(64)].pack("V")}\x04\x08",
                      "\x04\x08", "\x04\x08I"][i % 6]
            big.put_bytes(0, prefix.b + rng.bytes(rng.rand(1..64)))
            big.get_object(i.even? ? 0 : rng.rand(0..4096))
            raised[:none] += 1 # random bytes may happen to be a tiny valid stream ("\x04\x080" is nil)
          rescue TypeError, ArgumentError, IndexError => e
            raised[e.class] += 1
          end
          expect(raised[:none]).to be < 200
        end

        it "raises ArgumentError where Marshal.load itself would raise something else for malformed bytes" do
          {
            "a Regexp that does not compile" => "\x04\x08/\x06(\x00",
            "instance variables on an Integer" => "\x04\x08Ii\xfa\x06:\x07@a0",
            "a BasicObject as a Hash key" => "\x04\x08{\x06o:\x10BasicObject\x00i\x06"
          }.each do |name, bytes|
            big.put_bytes(0, bytes.b)
            expect { big.read_object }.to raise_error(ArgumentError, /not describe a valid object/), name
          end
        end

        it "lets what a marshal_load written in Ruby raises through unchanged" do
          loader = Class.new do
            def marshal_dump = 1
            def marshal_load(_) = raise(FrozenError, "from marshal_load")
          end
          stub_const("BadInputLoader", loader)
          big.write_object(BadInputLoader.new)
          expect { big.read_object }.to raise_error(FrozenError, "from marshal_load")
        end
      end
    end

    describe "after close" do
      before { mem.close }

      accessors = types.flat_map do |t|
        [["get_#{t}", 0], ["put_#{t}", 0, 1], ["read_#{t}"], ["write_#{t}", 1], ["get_array_of_#{t}", 0, 1],
         ["put_array_of_#{t}", 0, [1]], ["read_array_of_#{t}", 1], ["write_array_of_#{t}", [1]]]
      end
      # [method, *arguments]
      calls = accessors + [
        ["get_bytes", 0, 1], ["put_bytes", 0, "x"], ["put_bytes", 0, "x", 0, 1], ["read_bytes", 1],
        ["write_bytes", :x], ["get_string", 0], ["get_string", 0, 1], ["put_string", 0, "x"], ["read_string"],
        ["read_string", 1], ["write_string", :x], ["clear"], ["address"], ["to_ptr"], ["put_object", 0, 1],
        ["get_object", 0], ["write_object", 1], ["read_object"], ["write_object", proc {}], ["get_int", nil],
        ["get_int", -1], ["put_int", 2**64, "x"], ["get_object", -1]
      ]
      it "raises ClosedError from every accessor (even given bad arguments)" do
        calls.each do |name, *args|
          expect { mem.public_send(name, *args) }.to raise_error(ps::ClosedError), "#{name}(#{args.join(", ")})"
        end
      end

      it "keeps its size, type and count, and is idempotent" do
        mem.close
        expect([mem.closed?, mem.size, mem.type, mem.count]).to eq([true, size, :uchar, size])
        expect(mem.inspect).to include("closed")
      end
    end

    describe "arguments whose conversion closes the segment" do
      it "raises ClosedError (no write to unmapped memory)" do
        m1 = mem
        closing_str = Object.new
        closing_str.define_singleton_method(:to_str) { m1.close || "x" }
        expect { m1.put_bytes(0, closing_str) }.to raise_error(ps::ClosedError)

        m2 = ps::SharedMemory.new(:double, 4)
        expect { m2.put_array_of_double(0, [1.0, BadInputNumeric.new(2.0) { m2.close }]) }
          .to raise_error(ps::ClosedError)

        m3 = ps::SharedMemory.new(:pointer, 2)
        addr = Object.new
        addr.define_singleton_method(:address) { m3.close || 8 }
        expect { m3.put_pointer(0, addr) }.to raise_error(ps::ClosedError)

        m4 = ps::SharedMemory.new(:int, 4)
        closing_ary = Object.new
        closing_ary.define_singleton_method(:to_ary) { m4.close || [1, 2] }
        expect { m4.put_array_of_int(0, closing_ary) }.to raise_error(ps::ClosedError)

        m5 = ps::SharedMemory.new(64)
        dumper = Object.new
        dumper.define_singleton_method(:marshal_dump) { m5.close || 1 }
        expect { m5.write_object(dumper) }.to raise_error(ps::ClosedError)
      end

      it "propagates what the conversion raises, writing nothing (arrays: all or nothing)" do
        dmem = ps::SharedMemory.new(:double, 4)
        dmem.write_array_of_double([1.0, 2.0, 3.0, 4.0])
        raising = BadInputNumeric.new { raise IOError, "no" }
        expect_unchanged(dmem, IOError) { dmem.put_array_of_double(0, [9.0, 9.0, raising]) }
        expect_unchanged(dmem, TypeError) { dmem.put_double(0, BadInputNumeric.new("not a float")) }
        expect(dmem.read_array_of_double(4)).to eq([1.0, 2.0, 3.0, 4.0])
      end
    end
  end

  describe ProcessShared::SharedArray do
    let(:ary) { ps::SharedArray.new(:int, 4).tap { |a| 4.times { |i| a[i] = i + 1 } } }

    it "raises IndexError for indexes outside -length...length, touching nothing" do
      [4, -5, 2**64, -2**64, 2**200].each do |i|
        expect { ary[i] }.to raise_error(IndexError)
        expect { ary[i] = 0 }.to raise_error(IndexError)
      end
      expect(ary.to_a).to eq([1, 2, 3, 4])
    end

    it "raises TypeError for non-Integer indexes and values, RangeError for values outside the type" do
      non_integers.each do |bad|
        expect { ary[bad] }.to raise_error(TypeError)
        expect { ary[bad] = 0 }.to raise_error(TypeError)
        expect { ary[0] = bad }.to raise_error(TypeError)
      end
      [2**31, -2**31 - 1, 2**64].each { |bad| expect { ary[1] = bad }.to raise_error(RangeError) }
      expect(ary.to_a).to eq([1, 2, 3, 4])
      expect { ary[] }.to raise_error(ArgumentError)
      expect { ary[0, 1] }.to raise_error(ArgumentError)
    end

    it "raises ClosedError from each element access after close, also when closed while iterating" do
      seen = []
      expect { ary.each { |v| seen << v && ary.close } }.to raise_error(ps::ClosedError)
      expect(seen).to eq([1])
      [-> { ary[0] }, -> { ary[0] = 1 }, -> { ary.to_a }, -> { ary.map(&:itself) }, -> { ary.sum }].each do |c|
        expect(&c).to raise_error(ps::ClosedError)
      end
      expect(ary.length).to eq(4)
    end
  end

  describe ProcessShared::Semaphore do
    it "raises ArgumentError or TypeError for bad initial values" do
      [-1, 2**31, 2**64, -2**64].each { |v| expect { ps::Semaphore.new(v) }.to raise_error(ArgumentError) }
      [2, -1, 2**64].each { |v| expect { ps::BinarySemaphore.new(v) }.to raise_error(ArgumentError) }
      non_integers.each do |v|
        expect { ps::Semaphore.new(v) }.to raise_error(TypeError)
        expect { ps::BinarySemaphore.new(v) }.to raise_error(TypeError)
      end
      expect { ps::Semaphore.new(1, 2) }.to raise_error(ArgumentError)
    end

    [[ps::Semaphore, 2], [ps::Semaphore, 0], [ps::BinarySemaphore, 1], [ps::BinarySemaphore, 0]].each do |klass, value|
      context "a #{klass.name.split("::").last} at #{value}" do
        let(:sem) { klass.new(value) }

        it "raises ArgumentError for every bad timeout, without taking a permit" do
          bad_timeouts.each do |t|
            expect { sem.try_wait(t) }.to raise_error(ArgumentError), t.inspect
            expect { sem.to_mtx.sleep(t) }.to raise_error(ArgumentError), t.inspect
          end
          expect([sem.value, sem.waiters]).to eq([value, 0])
        end

        it "raises ArgumentError for a wrong number of arguments, and ThreadError for synchronize without a block" do
          expect { sem.wait(1) }.to raise_error(ArgumentError)
          expect { sem.post(1) }.to raise_error(ArgumentError)
          expect { sem.try_wait(0, 1) }.to raise_error(ArgumentError)
          expect { sem.value(1) }.to raise_error(ArgumentError)
          expect { sem.synchronize }.to raise_error(ThreadError)
          expect([sem.value, sem.waiters]).to eq([value, 0])
        end

        it "gives the timeout's or the post's error, unchanged, when it cannot proceed" do
          if value.zero?
            expect { sem.try_wait }.to raise_error(Errno::EAGAIN)
            expect { sem.try_wait(0) }.to raise_error(Errno::ETIMEDOUT)
            expect { sem.try_wait(0.01) }.to raise_error(Errno::ETIMEDOUT)
            expect(sem.to_mtx.try_lock).to be(false)
          elsif klass == ps::BinarySemaphore
            expect { sem.post }.to raise_error(ps::ProcessError)
            expect { sem.to_mtx.unlock }.to raise_error(ps::ProcessError)
            expect { sem.to_mtx.sleep(0) }.to raise_error(ps::ProcessError)
          end
          expect([sem.value, sem.waiters]).to eq([value, 0])
        end

        it "still works afterwards" do
          sem.post unless value.positive?
          sem.try_wait(Float::INFINITY) # a timeout that never expires; a permit is there
          sem.post
          expect(sem.synchronize { :in }).to eq(:in)
          expect(sem.value).to eq([value, 1].max)
        end

        it "raises ClosedError from every call after close" do
          mtx = sem.to_mtx
          sem.close
          [-> { sem.wait }, -> { sem.post }, -> { sem.try_wait }, -> { sem.try_wait(0) }, -> { sem.value },
           -> { sem.waiters }, -> { sem.synchronize { :no } }, -> { mtx.lock }, -> { mtx.unlock }, -> { mtx.try_lock },
           -> { mtx.locked? }, -> { mtx.synchronize { :no } }, -> { mtx.sleep(0) }].each do |c|
            expect(&c).to raise_error(ps::ClosedError)
          end
          expect(sem.inspect).to include("closed")
        end
      end
    end

    it "raises Errno::EOVERFLOW when posted past 2**31-1, unchanged" do
      sem = ps::Semaphore.new(2**31 - 1)
      expect { sem.post }.to raise_error(Errno::EOVERFLOW)
      expect(sem.synchronize { :in }).to eq(:in)
      expect(sem.value).to eq(2**31 - 1)
    end

    it "raises ClosedError when a timeout's conversion closes it, taking nothing" do
      sem = ps::Semaphore.new(1)
      expect { sem.try_wait(BadInputNumeric.new(0.0) { sem.close }) }.to raise_error(ps::ClosedError)
    end

    it "lets what a timeout's conversion raises or throws through, taking nothing" do
      sem = ps::Semaphore.new(1)
      expect { sem.try_wait(BadInputNumeric.new(0.0) { raise IOError }) }.to raise_error(IOError)
      expect(catch(:out) { sem.try_wait(BadInputNumeric.new(0.0) { throw :out, :thrown }) }).to eq(:thrown)
      expect { sem.try_wait(BadInputNumeric.new("0")) }.to raise_error(ArgumentError) # to_f must give a Float
      expect { sem.try_wait(BadInputNumeric.new(-1.0)) }.to raise_error(ArgumentError)
      expect(sem.value).to eq(1)
    end

    it "waits for a timeout of Float::INFINITY or a huge Integer (unlike no timeout: EAGAIN)" do
      [Float::INFINITY, 2**64, 2**200, 1e300].each do |t|
        sem = ps::Semaphore.new(0)
        waiter = Thread.new { sem.try_wait(t) }
        sleep 0.01 until sem.waiters == 1 || !waiter.alive?
        expect(waiter).to be_alive
        sem.post
        expect(waiter.join(5)).to be_truthy
        expect(sem.value).to eq(0)
      end
    end
  end

  describe ProcessShared::Mutex do
    let(:mutex) { ps::Mutex.new }
    state = ->(m) { [m.locked?, m.owned?, m.owner_pid] }

    it "raises ArgumentError for arguments to new" do
      expect { ps::Mutex.new(1) }.to raise_error(ArgumentError)
      expect { ps::Mutex.new(nil) }.to raise_error(ArgumentError)
    end

    [false, true].each do |held|
      context(held ? "held by this thread" : "unlocked") do
        before { mutex.lock if held }

        it "raises ArgumentError for every bad timeout, unchanged" do
          before = state.call(mutex)
          bad_timeouts.each do |t|
            expect { mutex.try_lock(t) }.to raise_error(ArgumentError), t.inspect
            expect { mutex.sleep(t) }.to raise_error(ArgumentError), t.inspect
          end
          expect(state.call(mutex)).to eq(before)
        end

        it "raises ArgumentError for a wrong number of arguments, ThreadError for synchronize without a block" do
          before = state.call(mutex)
          expect { mutex.lock(1) }.to raise_error(ArgumentError)
          expect { mutex.unlock(1) }.to raise_error(ArgumentError)
          expect { mutex.try_lock(0, 1) }.to raise_error(ArgumentError)
          expect { mutex.sleep(0, 1) }.to raise_error(ArgumentError)
          expect { mutex.synchronize }.to raise_error(ThreadError)
          expect(state.call(mutex)).to eq(before)
        end

        it "raises ProcessError for ownership misuse, unchanged" do
          before = state.call(mutex)
          if held
            expect { mutex.lock }.to raise_error(ps::ProcessError)
            expect { mutex.synchronize { :no } }.to raise_error(ps::ProcessError)
          else
            expect { mutex.unlock }.to raise_error(ps::ProcessError)
            expect { mutex.sleep(0) }.to raise_error(ps::ProcessError)
          end
          expect(state.call(mutex)).to eq(before)
        end

        it "takes Float::INFINITY and huge timeouts as timeouts that never expire" do
          expect(mutex.try_lock(Float::INFINITY)).to be(!held)
          expect(mutex.try_lock(2**200)).to be(false)
          mutex.unlock
          expect(mutex.locked?).to be(false)
        end

        it "raises ClosedError from every call after close" do
          mutex.close
          [-> { mutex.lock }, -> { mutex.unlock }, -> { mutex.try_lock }, -> { mutex.try_lock(0) },
           -> { mutex.locked? }, -> { mutex.owned? }, -> { mutex.owner_pid }, -> { mutex.synchronize { :no } },
           -> { mutex.sleep(0) }].each { |c| expect(&c).to raise_error(ps::ClosedError) }
        end
      end
    end

    it "waits for Float::INFINITY while another thread holds it" do
      mutex.lock
      waiter = Thread.new { mutex.try_lock(Float::INFINITY) }
      sleep 0.05
      expect(waiter).to be_alive
      mutex.unlock
      expect(waiter.value).to be(true)
    end

    it "raises ArgumentError for a BasicObject timeout to sleep, still held" do
      mutex.lock
      expect { mutex.sleep(BasicObject.new) }.to raise_error(ArgumentError)
    ensure
      expect(mutex.owned?).to be(true)
    end

    it "raises the sleep's RangeError for timeouts Kernel#sleep cannot take, still held (as Thread::Mutex)" do
      mutex.lock
      [Float::INFINITY, 2**64].each do |t|
        expect { mutex.sleep(t) }.to raise_error(RangeError)
        expect(mutex.owned?).to be(true)
      end
    end
  end

  describe ProcessShared::ConditionVariable do
    let(:cv) { ps::ConditionVariable.new }
    let(:mutex) { ps::Mutex.new }
    let(:monitor) { ps::Monitor.new }

    it "raises ArgumentError for a bad timeout, with the lock still held and no waiter left" do
      mutex.lock
      monitor.enter
      monitor.enter
      bad_timeouts.each do |t|
        expect { cv.wait(mutex, t) }.to raise_error(ArgumentError), t.inspect
        expect { cv.wait(monitor, t) }.to raise_error(ArgumentError), t.inspect
      end
      expect([mutex.owned?, monitor.mon_count, cv.waiters]).to eq([true, 2, 0])
    end

    it "raises TypeError for a lock that is not a ProcessShared Mutex or Monitor" do
      [nil, 1, "m", Thread::Mutex.new, Monitor.new, ps::Semaphore.new, ps::Semaphore.new.to_mtx, cv].each do |bad|
        expect { cv.wait(bad, 0) }.to raise_error(TypeError)
      end
      expect(cv.waiters).to eq(0)
    end

    it "raises ProcessError for a lock this thread does not hold, leaving no waiter" do
      expect { cv.wait(mutex, 0) }.to raise_error(ps::ProcessError)
      expect { cv.wait(monitor, 0) }.to raise_error(ps::ProcessError)
      expect([cv.waiters, mutex.locked?, monitor.mon_locked?]).to eq([0, false, false])
    end

    it "raises ArgumentError for a wrong number of arguments" do
      expect { cv.wait }.to raise_error(ArgumentError)
      expect { cv.wait(mutex, 0, 1) }.to raise_error(ArgumentError)
      expect { cv.signal(1) }.to raise_error(ArgumentError)
      expect { cv.broadcast(1) }.to raise_error(ArgumentError)
      expect { ps::ConditionVariable.new(1) }.to raise_error(ArgumentError)
    end

    it "raises ProcessError when the timeout's conversion unlocks the mutex, leaving no waiter" do
      mutex.lock
      expect { cv.wait(mutex, BadInputNumeric.new(0.0) { mutex.unlock }) }.to raise_error(ps::ProcessError)
      expect([cv.waiters, mutex.locked?]).to eq([0, false])
    end

    it "raises ClosedError when it or the lock is closed, with the lock still held" do
      mutex.lock
      cv.close
      [-> { cv.wait(mutex, 0) }, -> { cv.signal }, -> { cv.broadcast }, -> { cv.waiters }].each do |c|
        expect(&c).to raise_error(ps::ClosedError)
      end
      expect(mutex.owned?).to be(true)
      other = ps::ConditionVariable.new
      mutex.close
      expect { other.wait(mutex, 0) }.to raise_error(ps::ClosedError)
      monitor.close
      expect { other.wait(monitor, 0) }.to raise_error(ps::ClosedError)
      expect(other.waiters).to eq(0)
    end
  end

  describe ProcessShared::Monitor do
    let(:mon) { ps::Monitor.new }

    it "raises ArgumentError for bad timeouts and arguments, its count unchanged" do
      mon.enter
      mon.enter
      cond = mon.new_cond
      cv = ps::ConditionVariable.new
      bad_timeouts.each do |t|
        expect { mon.try_enter(t) }.to raise_error(ArgumentError), t.inspect
        expect { mon.mon_try_enter(t) }.to raise_error(ArgumentError)
        expect { cond.wait(t) }.to raise_error(ArgumentError)
        expect { mon.wait_for_cond(cv, t) }.to raise_error(ArgumentError)
      end
      expect { mon.enter(1) }.to raise_error(ArgumentError)
      expect { mon.exit(1) }.to raise_error(ArgumentError)
      expect { mon.synchronize }.to raise_error(LocalJumpError) # as ::Monitor#synchronize
      expect { ps::Monitor.new(1) }.to raise_error(ArgumentError)
      expect([mon.mon_count, cv.waiters]).to eq([2, 0])
      2.times { mon.exit }
      expect(mon.mon_locked?).to be(false)
    end

    it "raises TypeError from wait_for_cond given something that is not a condition variable" do
      mon.enter
      [nil, "cond", 1].each { |bad| expect { mon.wait_for_cond(bad, 0) }.to raise_error(TypeError) }
      expect(mon.wait_for_cond(mon.new_cond, 0)).to be(false)
      expect(mon.wait_for_cond(ps::ConditionVariable.new, 0)).to be(false)
    ensure
      expect(mon.mon_count).to eq(1)
    end

    it "raises ProcessError for exiting or waiting without holding it, unchanged" do
      cond = mon.new_cond
      [-> { mon.exit }, -> { mon.unlock }, -> { mon.mon_exit }, -> { mon.mon_check_owner }, -> { cond.wait(0) },
       -> { cond.signal }, -> { cond.broadcast }].each { |c| expect(&c).to raise_error(ps::ProcessError) }
      expect(mon.mon_locked?).to be(false)
    end

    it "raises ClosedError from every call after close" do
      cond = mon.new_cond
      mon.close
      [-> { mon.enter }, -> { mon.exit }, -> { mon.try_enter }, -> { mon.try_enter(0) }, -> { mon.mon_locked? },
       -> { mon.mon_owned? }, -> { mon.mon_count }, -> { mon.owner_pid }, -> { mon.synchronize { :no } },
       -> { cond.wait(0) }, -> { cond.signal }].each { |c| expect(&c).to raise_error(ps::ClosedError) }
    end

    it "raises ClosedError from new_cond after close" do
      mon.close
      expect { mon.new_cond }.to raise_error(ps::ClosedError)
    end

    it "raises ClosedError from a closed condition, with the monitor still held" do
      cond = mon.new_cond
      cond.close
      mon.synchronize do
        [-> { cond.wait(0) }, -> { cond.signal }, -> { cond.broadcast }].each do |c|
          expect(&c).to raise_error(ps::ClosedError)
        end
        expect(mon.mon_count).to eq(1)
      end
    end
  end

  describe ProcessShared::MonitorMixin do
    let(:obj) { Object.new.extend(ps::MonitorMixin) }

    it "raises the Monitor's errors" do
      bad_timeouts.each { |t| expect { obj.mon_try_enter(t) }.to raise_error(ArgumentError) }
      expect { obj.mon_exit }.to raise_error(ps::ProcessError)
      expect { obj.__send__(:mon_check_owner) }.to raise_error(ps::ProcessError) # private, as in stdlib's
      expect { obj.synchronize }.to raise_error(LocalJumpError)
      expect(obj.mon_locked?).to be(false)
      expect(obj.synchronize { obj.mon_owned? }).to be(true)
    end
  end

  describe ".open" do
    it "raises what .new raises for bad arguments, without running the block" do
      ran = false
      [[ps::SharedMemory, [0], ArgumentError], [ps::SharedArray, [:int, "2"], TypeError],
       [ps::Semaphore, [-1], ArgumentError], [ps::BinarySemaphore, [2], ArgumentError],
       [ps::Mutex, [1], ArgumentError], [ps::Monitor, [nil], ArgumentError],
       [ps::ConditionVariable, [1, 2], ArgumentError]].each do |klass, args, error|
        expect { klass.open(*args) { ran = true } }.to raise_error(error), "#{klass}.open(#{args.inspect})"
      end
      expect(ran).to be(false)
    end

    it "closes the object when the block raises or throws" do
      kept = []
      expect { ps::Mutex.open { |m| kept << m.lock && raise(IOError) } }.to raise_error(IOError)
      catch(:out) { ps::SharedMemory.open(8) { |m| kept << m && throw(:out) } }
      expect(kept.map(&:closed?)).to eq([true, true])
    end
  end

  describe "BasicObject arguments (no methods at all, not even #inspect)" do
    let(:bare) { BasicObject.new }

    it "get TypeError or ArgumentError from the native methods, changing nothing" do
      mem = ps::SharedMemory.new(:pointer, 2)
      sem = ps::Semaphore.new(1)
      mutex = ps::Mutex.new
      [-> { mem.get_int(bare) }, -> { mem.put_pointer(0, bare) }, -> { mem.put_double(0, bare) },
       -> { mem.put_bytes(0, bare) }, -> { mem.put_array_of_int(0, bare) }, -> { mem.get_object(bare) },
       -> { ps::SharedMemory.new(bare) }, -> { ps::SharedArray.new(:int, 2)[bare] }, -> { ps::Semaphore.new(bare) },
       -> { ps::ConditionVariable.new.wait(bare, 0) }].each { |c| expect(&c).to raise_error(TypeError) }
      [-> { sem.try_wait(bare) }, -> { mutex.try_lock(bare) }, -> { ps::Monitor.new.try_enter(bare) },
       -> { mutex.lock && ps::ConditionVariable.new.wait(mutex, bare) }].each do |c|
        expect(&c).to raise_error(ArgumentError)
      end
      expect([mem.read_array_of_pointer(2), sem.value, mutex.owned?]).to eq([[0, 0], 1, true])
    end
  end

  describe "blocks that raise, throw or break" do
    it "leave every lock as it was" do
      sem = ps::Semaphore.new(1)
      mutex = ps::Mutex.new
      mon = ps::Monitor.new
      facade = ps::BinarySemaphore.new(1).to_mtx
      [sem, mutex, mon, facade].each do |lock|
        expect { lock.synchronize { raise IOError } }.to raise_error(IOError)
        expect(catch(:out) { lock.synchronize { throw :out, :thrown } }).to eq(:thrown)
        expect(lock.synchronize { break :broke }).to eq(:broke)
      end
      expect([sem.value, mutex.locked?, mon.mon_locked?, facade.locked?]).to eq([1, false, false, false])
    end

    it "may close the lock inside synchronize" do
      [ps::Semaphore.new, ps::Mutex.new, ps::Monitor.new].each do |lock|
        expect(lock.synchronize { lock.close || :done }).to eq(:done)
        expect(lock).to be_closed
      end
    end
  end
end
