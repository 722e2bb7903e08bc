# frozen_string_literal: true

# A fuzz test of the Ruby API. A child process (a fresh Ruby, spawned: a crash shows as a signal) makes
# FUZZ_CALLS random calls (default 100_000) of random public methods on a pool of objects of every class
# (SharedMemory, SharedArray of every type, Semaphore, BinarySemaphore, Mutex, Monitor, ConditionVariable,
# Monitor#new_cond conditions, Semaphore#to_mtx facades, MonitorMixin objects, AtomicInteger, Counters, Event,
# CountDownLatch, Barrier, ReadWriteLock, Queue), with 0-4 random arguments drawn from a nasty pool (bignums, NaN,
# infinities, Complex, garbage strings, other pool objects, BasicObjects, objects whose to_f/to_str/to_ary/
# to_int/address/marshal_dump raise, throw or close things), random blocks (that return, raise, throw, break,
# close the receiver or make more calls), random closing, and random or crafted garbage written into shared
# memory and read back as objects. It checks that:
# - every call returns or raises a StandardError (counted by class): anything else, or a crash, fails;
# - a call that raised left its receiver as it was (bytes, semaphore value, lock state, monitor count);
# - a call on a closed object did not return (except close, closed?, inspect, size and the like);
# - no waiter is left counted, and no lock is held by anyone but the fuzzing thread;
# - reading garbage raises TypeError, ArgumentError or IndexError (or loads something);
# then it runs FUZZ_STRESS_CALLS more (default 300) with GC.stress on during the calls, checks invariants on
# every object left, and exits 0.
#
#   rspec spec/fuzz_spec.rb                              # a random seed (printed), 100_000 + 300 calls, ~10 s
#   rake fuzz                                            # the full run: 100_000 + 2_000 under GC.stress, ~40 s
#   FUZZ_SEED=1234 rspec spec/fuzz_spec.rb               # replay a run: everything derives from the seed
#   FUZZ_SEED=1234 FUZZ_TRACE=1 rspec spec/fuzz_spec.rb  # ... printing each call (and its outcome) to stderr
#                                                        # first, to find the one that crashed
#   FUZZ_CALLS=1000000 FUZZ_STRESS_CALLS=5000 rspec spec/fuzz_spec.rb   # longer
#   FUZZ_VERBOSE=1 rspec spec/fuzz_spec.rb               # print the exception histograms
#
# Blocking calls cannot hang it: a timeout of nil, Float::INFINITY or more than a few milliseconds passed to a
# call that can block (Semaphore#try_wait, ConditionVariable#wait, Mutex#sleep, ...) is replaced by a tiny one,
# Semaphore#wait/#synchronize (and the to_mtx facade's lock) are only called when a permit is there, and
# Monitor conditions' wait_while/wait_until get blocks that do not loop forever. (A Timeout around each call
# would interrupt the very waits under test, and cost a thread per call.) A watchdog thread still ends the
# child, naming the call, should one take longer than FUZZ_HANG seconds (default 10).

require "rbconfig"
if $PROGRAM_NAME == __FILE__ # the child (see the end of this file)
  $LOAD_PATH.unshift File.expand_path("../lib", __dir__)
  require "process_shared"
end
begin
  require "ffi" # SharedMemory#to_ptr, and FFI::Pointers as :pointer values
rescue LoadError
  nil
end

module ProcessSharedFuzz
  PS = ProcessShared
  TYPES = %i[char uchar short ushort int uint long ulong long_long ulong_long int8 uint8 int16 uint16 int32 uint32
             int64 uint64 float double size_t pointer].freeze
  ACCESSOR = /\A(get|put|read|write|get_array_of|put_array_of|read_array_of|write_array_of)_(#{TYPES.join("|")})\z/
  # Calls that may return normally on a closed object (metadata, lifecycle, and new wrappers whose own calls raise).
  ALLOWED_AFTER_CLOSE = %w[close closed? inspect size type type_size count length to_mtx wait_while wait_until].freeze
  # Raised by bodies of blocks.
  class BodyError < StandardError; end
  # Returned by a block body to make the block break.
  BREAK = Object.new.freeze

  # A Numeric (so taken for a timeout or a float value) whose #to_f runs an action first. Its value is never
  # a long timeout, so it cannot make a wait block.
  class EvilNumeric < Numeric
    def initialize(action, value)
      super()
      @action = action
      @value = value
    end

    def to_f
      @action&.call
      @value
    end

    def inspect = "#<EvilNumeric #{@value.inspect}>"
  end

  # An object with a conversion method (to_str, to_ary, address, marshal_dump, _dump) that runs an action.
  class EvilConversion
    def initialize(method, action, value)
      @method = method
      action_ = action
      value_ = value
      define_singleton_method(method) do |*|
        action_&.call
        value_
      end
    end

    def inspect = "#<EvilConversion #{@method}>"
  end

  # Objects with MonitorMixin included (its initialize must call super).
  class Mixed
    include ProcessShared::MonitorMixin

    def initialize
      super
      @payload = []
    end
  end

  # The fuzzer, run in the child.
  class Runner
    attr_reader :report

    def initialize(seed:, calls:, stress_calls:, trace: false)
      @rng = Random.new(seed)
      @seed = seed
      @calls = calls
      @stress_calls = stress_calls
      @trace = trace
      @raised = Hash.new(0) # exception class name => count
      @garbage_raised = Hash.new(0)
      @stats = Hash.new(0)
      @violations = []
      @current = nil
      @started = nil
      @methods = {}
      @arities = {}
      @pool = []
      @named = ENV["FUZZ_NAMED"] == "1"
    end

    def run
      start = now
      watchdog = start_watchdog
      fill_pool
      @calls.times { |i| step(i) }
      @stats[:main_seconds] = (now - start).round(2)
      stress_start = now
      @stress = true
      @stress_calls.times { |i| step(@calls + i) }
      @stress = false
      @stats[:stress_seconds] = (now - stress_start).round(2)
      @stats[:heap_live_slots] = GC.stat(:heap_live_slots)
      check_invariants
      watchdog.kill
      make_report
    rescue Exception => e # -- anything but StandardError is a finding
      GC.stress = false
      violation("the fuzzer itself died: #{e.class}: #{e.message}\n    #{Array(e.backtrace).first(8).join("\n    ")}")
      make_report
    end

    def make_report
      named = ->(counts) { counts.transform_keys { |k| k.is_a?(Module) ? k.name : k } }
      @report = { seed: @seed, calls: @calls, stress_calls: @stress_calls, raised: named.call(@raised),
                  garbage_raised: named.call(@garbage_raised), stats: @stats, violations: @violations.first(20),
                  violation_count: @violations.size }
    end

    private

    def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

    # Runs the block with GC.stress on in the stress phase: a GC at every allocation the gem (or Marshal, or a
    # block it yields to) makes, while the fuzzer's own bookkeeping runs at normal speed.
    def stressed
      return yield unless @stress

      previous = GC.stress
      GC.stress = true
      begin
        yield
      ensure
        GC.stress = previous
      end
    end

    def violation(msg)
      @violations << msg
      @stats[:violations] += 1
    end

    # Ends the process if a call takes too long, naming it (on stderr: the report pipe may be unread).
    def start_watchdog
      limit = Float(ENV.fetch("FUZZ_HANG", 10))
      Thread.new do
        loop do
          sleep 0.5
          started = @started
          allowed = @stress ? limit * 6 : limit # a GC at every allocation makes big calls slow
          next unless started && now - started > allowed

          warn "fuzz (seed #{@seed}): call #{@current.inspect[0, 500]} has been running for #{allowed}s: hung"
          $stderr.flush
          exit!(3)
        end
      end
    end

    # ---------------------------------------------------------------------------------------------------
    # The pool
    # ---------------------------------------------------------------------------------------------------

    KINDS = %i[mem typed_mem ary sem bsem mutex monitor cv cond facade mixin mixed atomic counters event latch
               barrier rwlock queue].freeze

    def fill_pool
      KINDS.each { |k| 3.times { @pool << make(k) } }
    end

    def make(kind)
      n = named
      case kind
      when :mem then PS::SharedMemory.new(pick([1, 2, 7, 8, 16, 64, 255, 4096]), **n)
      when :typed_mem then PS::SharedMemory.new(pick(TYPES), @rng.rand(1..16), **n)
      when :ary then PS::SharedArray.new(pick(TYPES), @rng.rand(1..16), **n)
      when :sem then PS::Semaphore.new(@rng.rand(0..3), **n)
      when :bsem then PS::BinarySemaphore.new(@rng.rand(0..1), **n)
      when :mutex then PS::Mutex.new(**n)
      when :monitor then PS::Monitor.new(**n)
      when :cv then PS::ConditionVariable.new(**n)
      when :cond then (pool_of(PS::Monitor).reject(&:closed?).sample(random: @rng) || PS::Monitor.new).new_cond
      when :facade
        (pool_of(PS::Semaphore).reject(&:closed?).sample(random: @rng) || PS::BinarySemaphore.new).to_mtx
      when :mixin then Object.new.extend(PS::MonitorMixin)
      when :mixed then Mixed.new
      when :atomic then PS::AtomicInteger.new(pick([0, 1, -1, 2**63 - 1, -2**63]), **n)
      when :counters then PS::Counters.new(pick([0, 1, 2, 3, 65]), **n)
      when :event then PS::Event.new(**n)
      when :latch then PS::CountDownLatch.new(@rng.rand(0..2), **n)
      when :barrier then PS::Barrier.new(@rng.rand(1..3), **n)
      when :rwlock then PS::ReadWriteLock.new(**n)
      when :queue then PS::Queue.new(capacity: pick([8, 64, 4096]), max: pick([nil, 1, 3]), **n)
      end
    rescue Errno::ENOSPC, Errno::ENOMEM, PS::Error => e
      # Named: the name may be taken by another class or size, or /dev/shm full. Fall back to anonymous.
      raise unless @named

      @stats[:"make #{e.class}"] += 1
      @named = false
      begin
        make(kind)
      ensure
        @named = true
      end
    end

    # With FUZZ_NAMED=1, most new objects are named, from a few names shared by every class: reopening a
    # name as another class, or with another size, must raise cleanly; so must a full /dev/shm.
    def named
      return {} unless @named && chance(0.7)

      { name: "fuzz.#{Process.pid}.#{@rng.rand(6)}" }
    end

    def pool_of(klass) = @pool.select { |o| o.is_a?(klass) }

    def pick(list) = list.empty? ? nil : list[@rng.rand(list.size)]

    def chance(probability) = @rng.rand < probability

    # Replaces a pool object, most often a closed one, by a fresh one (closed ones stay a while: calls on them
    # must raise).
    def replenish
      closed = @pool.each_index.select { |i| closed?(@pool[i]) }
      i = closed.any? && chance(0.8) ? pick(closed) : @rng.rand(@pool.size)
      @pool[i] = make(pick(KINDS))
    end

    # ---------------------------------------------------------------------------------------------------
    # One step
    # ---------------------------------------------------------------------------------------------------

    def step(index)
      @index = index
      @stats[:steps] += 1
      r = @rng.rand
      if r < 0.03 then replenish
      elsif r < 0.04 then close_something
      elsif r < 0.07 then garbage_read
      elsif r < 0.09 then class_call
      else
        call(pick(@pool), 0)
      end
    end

    def close_something
      obj = pick(@pool)
      # (A Queue's close closes it for everyone, which a handle released by Queue.open cannot: ClosedError.)
      obj.close if obj.respond_to?(:close) && !(obj.is_a?(PS::Queue) && obj.closed?)
      @stats[:closed] += 1
    end

    # The public methods to fuzz on obj: its class's own (not Object's), and for a SharedArray its Enumerable
    # methods (cycle only without a block).
    def methods_of(obj)
      key = obj.is_a?(PS::MonitorMixin) ? PS::MonitorMixin : obj.class
      @methods[key] ||= begin
        ms = key == PS::MonitorMixin ? PS::MonitorMixin.public_instance_methods : obj.public_methods
        ms -= Object.public_instance_methods
        ms -= [:to_ptr] unless defined?(::FFI::Pointer)
        ms.map(&:to_s).sort.freeze
      end
    end

    # Calls a random public method of recv with random arguments (and maybe a block), and checks the outcome.
    def call(recv, depth)
      meth = pick(methods_of(recv))
      args = arguments(recv, meth)
      return @stats[:skipped_blocking] += 1 if (args = unblock(recv, meth, args)) == :skip

      with_block = block_for?(meth)
      invoke(recv, meth, args, with_block, depth)
    end

    def invoke(recv, meth, args, with_block, depth)
      closed_before = closed?(recv)
      @stats[:calls_on_closed] += 1 if closed_before
      before = with_block || closed_before ? nil : state(recv)
      if depth.zero?
        @current = [@index, recv, meth, args]
        @started = now
      end
      if @trace
        warn "fuzz #{@index}#{" " * depth}: #{describe(recv)}.#{meth}(#{args.map do |a|
                                                                          describe(a)
                                                                        end.join(", ")})"
      end
      outcome = :returned
      escaped = true
      result = nil
      catch(:fuzz_escape) do
        begin
          result = stressed do
            if with_block
              recv.public_send(meth, *args) do |*yielded|
                value = body(recv, meth, yielded, depth)
                break value if value.equal?(BREAK)

                value
              end
            else
              recv.public_send(meth, *args)
            end
          end
        rescue StandardError => e
          outcome = e
          @raised[e.class] += 1
        rescue NotImplementedError => e
          raise unless meth == "to_ptr" && !defined?(::FFI::Pointer)

          outcome = e
        end
        escaped = false
      end
      @started = nil if depth.zero?
      warn "fuzz #{@index}#{" " * depth}  -> #{escaped ? "(thrown)" : outcome.class}" if @trace
      @stats[:thrown] += 1 if escaped
      @stats[:returned] += 1 if outcome == :returned && !escaped
      @stats[:calls] += 1
      check(recv, meth, args, outcome, closed_before, before) unless escaped || Enumerator === result # rubocop:disable Style/CaseEquality
      check_always(recv)
    end

    # ---------------------------------------------------------------------------------------------------
    # Arguments
    # ---------------------------------------------------------------------------------------------------

    INTEGERS = [0, 1, -1, 127, 128, 255, 256, -129, 2**15, 2**31 - 1, 2**31, 2**32, 2**63, 2**64 - 1, 2**64,
                -2**63].freeze
    SIZES = [0, 1, 2, 3, 16, 4096, -1, 2**31, 2**40, 2**62, 2**63 - 1, 2**64, :int, :double, :pointer, :nope].freeze
    TIMEOUTS = [0, 0.0, 0.001, Rational(1, 1000), -0.0, nil, -1, Float::NAN, Float::INFINITY, 2**64, "0"].freeze

    # The usual number of arguments of methods taking any number.
    VARARGS = { "put_bytes" => 2..4, "write_bytes" => 1..3, "get_string" => 1..2, "read_string" => 0..1,
                "write_string" => 1..2, "try_wait" => 0..1, "try_lock" => 0..1, "try_enter" => 0..1, "wait" => 1..2,
                "mon_try_enter" => 0..1, "try_mon_enter" => 0..1 }.freeze
    BLOCKING_WITHOUT_TIMEOUT = %w[wait _wait synchronize lock].freeze
    ALWAYS_WITH_BLOCK = %w[synchronize mon_synchronize wait_while wait_until].freeze
    COND_LOOPS = %w[wait_while wait_until].freeze

    NASTY = [nil, true, false, -1, 0, 1, 2, 3, 7, 8, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, -2**63, -2**64,
             2**200, -2**200, 1.5, 0.0, -0.0, 0.001, -0.001, 1e300, -1e300, Float::NAN, Float::INFINITY,
             -Float::INFINITY, Float::MAX, Float::MIN, Rational(1, 3), Rational(1, 1000), Rational(-1, 2),
             Complex(1, 1), Complex(0, 0), "", "x", "x" * 1000, "\x00\xff\xfe".b, "ünïcödé", "\x04\x08[\x00".b, "PSM1",
             :sym, :int, :double, :pointer, :nope, [], [1, 2, 3], [1.5, nil], [2**64], Array.new(300, 1), {}, { a: 1 },
             1..2, Object.new, BasicObject.new, Class, Kernel, -> {}, Thread::Mutex.new, Struct.new(:a).new(1)].freeze

    def arguments(recv, meth)
      arity = natural_arity(recv, meth)
      n = chance(0.6) && arity ? arity : @rng.rand(0..4)
      Array.new(n) { |i| chance(0.5) ? plausible(recv, meth, i) : nasty(recv) }
    end

    # The number of arguments a call usually takes (nil: unknown).
    def natural_arity(recv, meth)
      range = (@arities[recv.class] ||= {})[meth] ||= arity_range(recv, meth)
      range && @rng.rand(range)
    end

    def arity_range(recv, meth)
      m = recv.method(meth)
      return m.arity..m.arity if m.arity >= 0

      req = m.parameters.count { |t, _| t == :req }
      opt = m.parameters.count { |t, _| t == :opt }
      return req..(req + opt) if m.parameters.none? { |t, _| t == :rest }

      VARARGS.fetch(meth, 0..2)
    rescue NameError
      nil
    end

    def nasty(recv)
      r = @rng.rand
      if r < 0.6 then pick(NASTY)
      elsif r < 0.75 then pick(@pool)
      elsif r < 0.9 then evil(recv)
      else
        @rng.bytes(@rng.rand(0..40))
      end
    end

    # An argument whose conversion (to_f, to_str, to_ary, to_int, address, marshal_dump, _dump) does something
    # nasty: raise, throw, close the receiver or another object; then returns something good or bad.
    def evil(recv)
      other = pick(@pool)
      action = pick([nil, -> { raise BodyError, "from a conversion" }, -> { throw :fuzz_escape },
                     -> { recv.close if recv.respond_to?(:close) }, -> { other.close if other.respond_to?(:close) }])
      case @rng.rand(7)
      when 0 then EvilNumeric.new(action, pick([0.0, 0.001, -1.0, Float::NAN, "0.001", nil, 2**70]))
      when 6 then EvilConversion.new(:to_int, action, pick([0, 1, -1, 2**70, "1", nil]))
      when 1 then EvilConversion.new(:to_str, action, pick(["x", "", 1, nil, "y" * 100]))
      when 2 then EvilConversion.new(:to_ary, action, pick([[1, 2], [], "x", [nil], [2**70]]))
      when 3 then EvilConversion.new(:address, action, pick([0, 8, -1, 2**70, "x", nil]))
      when 4 then EvilConversion.new(:marshal_dump, action, pick([1, [1, 2], nil, "s" * 100]))
      else EvilConversion.new(:_dump, action, pick(["x", 1, nil]))
      end
    end

    # An argument of the right kind for position i, often in range, to get past the first checks.
    def plausible(recv, meth, index)
      size = recv.respond_to?(:size) && recv.is_a?(PS::SharedMemory) ? recv.size : 16
      case meth
      when "[]", "[]=", "incr", "decr"
        if index.zero? then @rng.rand(-20..20)
        else
          plausible_value(recv.respond_to?(:type) ? recv.type : :int64)
        end
      when "increment", "decrement", "value=", "compare_and_set", "get_and_set", "set", "up", "down"
        plausible_value(:int64)
      when ACCESSOR
        type = Regexp.last_match(2).to_sym
        op = Regexp.last_match(1)
        first_is_offset = %w[get put get_array_of put_array_of].include?(op)
        if index.zero? && first_is_offset then @rng.rand(-2..size + 2)
        elsif op.end_with?("array_of") && op.start_with?("get", "read") then @rng.rand(-1..(size / 2) + 2)
        elsif op.end_with?("array_of") then Array.new(@rng.rand(0..6)) { plausible_value(type) }
        else
          plausible_value(type)
        end
      when "get_bytes", "put_bytes", "get_string", "put_string", "get_object", "put_object", "read_bytes",
           "read_string", "write_bytes", "write_string", "write_object"
        if index.zero? && meth.start_with?("get", "put") then @rng.rand(-2..size + 2)
        elsif meth.end_with?("object") then pick([nil, 1, "s", [1, { a: :b }], 2**70, 1.5, "x" * @rng.rand(0..300)])
        elsif meth.include?("bytes") || meth.include?("string")
          chance(0.5) ? @rng.bytes(@rng.rand(0..20)) : @rng.rand(-1..size + 1)
        end
      when /try|wait|sleep/ then timeout_value(recv, meth, index)
      else
        pick([0, 1, nil, pick(@pool)])
      end
    end

    def plausible_value(type)
      case type
      when :float, :double then pick([0.0, -1.5, 1e38, 1e39, Float::NAN, Float::INFINITY, 3, Rational(1, 2)])
      when :pointer then pick([0, nil, 2**64 - 1, 4096, defined?(::FFI::Pointer) ? ::FFI::Pointer.new(16) : 16])
      else pick(INTEGERS)
      end
    end

    def timeout_value(recv, meth, index)
      if index.zero? && recv.is_a?(PS::ConditionVariable) && meth == "wait"
        pick(@pool.grep(PS::Mutex) + @pool.grep(PS::Monitor) + [nil])
      elsif index.zero? && meth == "wait_for_cond"
        pick(@pool.grep(PS::ConditionVariable) + @pool.grep(PS::Monitor::ConditionVariable))
      else
        pick(TIMEOUTS)
      end
    end

    # ---------------------------------------------------------------------------------------------------
    # Never hang
    # ---------------------------------------------------------------------------------------------------

    # Position of the timeout argument of calls that can block, by receiver class.
    def timeout_index(recv, meth)
      case meth
      when "try_wait", "_try_wait" then 0 if recv.is_a?(PS::Semaphore)
      when "try_read_lock", "try_write_lock" then 0 if recv.is_a?(PS::ReadWriteLock)
      when "sleep" then 0 if recv.is_a?(PS::Mutex) || recv.is_a?(PS::SemaphoreMutex)
      when "wait"
        case recv
        when PS::ConditionVariable then 1
        when PS::Monitor::ConditionVariable, PS::Event, PS::CountDownLatch, PS::Barrier then 0
        end
      when "wait_for_cond" then 1 if recv.is_a?(PS::Monitor)
      end
    end

    # A timeout that could make a call block for long: nil (forever; for try_wait: no wait), large, infinite.
    def long_timeout?(recv, value)
      # (values may be BasicObjects: only Module#=== is safe on them)
      return !recv.is_a?(PS::Semaphore) if NilClass === value # rubocop:disable Style/CaseEquality
      return false if EvilNumeric === value || !(Numeric === value) || !value.real? # rubocop:disable Style/CaseEquality
      return false if value.respond_to?(:nan?) && value.nan?

      value > 0.002
    end

    # The arguments, made safe, or :skip.
    def unblock(recv, meth, args)
      return queue_unblock(recv, meth, args) if recv.is_a?(PS::Queue)

      if (i = timeout_index(recv, meth))
        args += [nil] * (i + 1 - args.size) if args.size <= i && args.size >= i # the default is nil
        args[i] = pick([0, 0.001, Rational(1, 1000), -0.0]) if args.size > i && long_timeout?(recv, args[i])
        return args
      end
      sem = case recv
            when PS::SemaphoreMutex then recv.instance_variable_get(:@semaphore)
            when PS::Semaphore then recv
            end
      return args unless sem.is_a?(PS::Semaphore) && BLOCKING_WITHOUT_TIMEOUT.include?(meth) &&
                         (args.empty? || meth == "_wait")
      return args if sem.closed? || sem.value.positive?

      :skip
    end

    # Queue calls take their timeout as a keyword, which random positional arguments never give: a push is
    # only made when it cannot wait (closed, or empty: a record that fits at all fits then), a waiting pop
    # only when something is there.
    def queue_unblock(recv, meth, args)
      return args if recv.closed?

      case meth
      when "push", "<<", "enq" then recv.empty? ? args : :skip
      when "pop", "shift", "deq" then recv.empty? && (args.empty? || !args.first) ? :skip : args # non_block falsy
      else args
      end
    end

    def block_for?(meth)
      return false if meth == "cycle"

      ALWAYS_WITH_BLOCK.include?(meth) || chance(0.2)
    end

    # The body of a block: returns, raises, throws, breaks, closes things, or makes more calls.
    def body(recv, meth, yielded, depth)
      return cond_body(recv, meth) if COND_LOOPS.include?(meth)

      case @rng.rand(10)
      when 0 then raise BodyError, "from a block"
      when 1 then throw :fuzz_escape
      when 2 then recv.close if recv.respond_to?(:close)
      when 3..6 then @rng.rand(1..3).times { call(chance(0.6) ? recv : pick(@pool), depth + 1) } if depth < 3
      when 7 then yielded.first
      when 8 then BREAK
      else pick(NASTY)
      end
    end

    # wait_while/wait_until loop while the block says so, waiting with no timeout: only keep them waiting when
    # the wait is bound to raise at once (monitor not held, or the condition or monitor closed).
    def cond_body(cond, meth)
      monitor = cond.instance_variable_get(:@monitor)
      waits = meth == "wait_while"
      held = !cond.closed? && !monitor.closed? && monitor.mon_owned?
      case @rng.rand(6)
      when 0 then raise BodyError, "from a condition block"
      when 1 then throw :fuzz_escape
      when 2
        pick([cond, monitor]).close
        waits
      else held ? !waits : waits
      end
    end

    # ---------------------------------------------------------------------------------------------------
    # Class methods
    # ---------------------------------------------------------------------------------------------------

    def class_call
      klass = pick([PS::SharedMemory, PS::SharedArray, PS::Semaphore, PS::BinarySemaphore, PS::Mutex, PS::Monitor,
                    PS::ConditionVariable, PS::SemaphoreMutex, PS::Monitor::ConditionVariable, PS::AtomicInteger,
                    PS::Counters, PS::Event, PS::CountDownLatch, PS::Barrier, PS::ReadWriteLock, PS::Queue])
      meth = klass.respond_to?(:open) && chance(0.3) ? :open : :new
      args = Array.new(@rng.rand(0..3)) do
        chance(0.5) ? pick(SIZES) : nasty(nil)
      end
      @current = [@index, klass, meth, args]
      @started = now
      warn "fuzz #{@index}: #{klass}.#{meth}(#{args.map { |a| describe(a) }.join(", ")})" if @trace
      catch(:fuzz_escape) do
        obj = stressed do
          meth == :open ? klass.open(*args) { |o| open_body(o) } : klass.new(*args)
        end
        adopt(obj)
      rescue StandardError => e
        @raised[e.class] += 1
        warn "fuzz #{@index}  -> #{e.class}: #{e.message[0, 200]}" if @trace
      end
      @started = nil
      @stats[:class_calls] += 1
    end

    def big?(obj) = obj.is_a?(PS::SharedMemory) && obj.size > 65_536

    def open_body(obj)
      return obj.size if big?(obj)

      @rng.rand(1..3).times { call(obj, 1) }
      pick([obj, nil, 1])
    end

    # A new object joins the pool (a huge segment is closed at once: bulk calls on it would be slow).
    def adopt(obj)
      return unless obj.respond_to?(:closed?)
      return obj.close if big?(obj)
      # Wrappers around something else than what they wrap would block in ways the guards cannot foresee.
      return if obj.is_a?(PS::SemaphoreMutex) && !obj.instance_variable_get(:@semaphore).is_a?(PS::Semaphore)
      return if obj.is_a?(PS::Monitor::ConditionVariable) && !obj.instance_variable_get(:@monitor).is_a?(PS::Monitor)

      @pool[@rng.rand(@pool.size)] = obj if chance(0.5) && methods_of(obj).any?
    rescue StandardError
      nil
    end

    # ---------------------------------------------------------------------------------------------------
    # Garbage in shared memory
    # ---------------------------------------------------------------------------------------------------

    CLASS_NAMES = %w[Object Array Hash String Struct Range Time Rational Complex Exception NoMemoryError Symbol Integer
                     Float Regexp Class Module Kernel Comparable Enumerable BasicObject Random Encoding IO File Proc
                     Thread NilClass Process::Status ProcessShared::SharedMemory ProcessShared::Mutex
                     ProcessShared::SemaphoreMutex ProcessShared::MonitorMixin ProcessShared::Monitor::ConditionVariable
                     ProcessShared::OwnerDeadError ProcessSharedFuzz::Mixed Nope ::].freeze

    def garbage_read
      mem = @pool.grep(PS::SharedMemory).reject(&:closed?).sample(random: @rng)
      return unless mem

      bytes = garbage(mem.size)
      offset = chance(0.6) ? 0 : @rng.rand(0..mem.size)
      offset = [mem.size - bytes.bytesize, 0].max if offset + bytes.bytesize > mem.size
      mem.put_bytes(offset, bytes.byteslice(0, mem.size - offset))
      @stats[:garbage_reads] += 1
      @current = [@index, mem, :get_object, [offset]]
      @started = now
      warn "fuzz #{@index}: garbage #{bytes.inspect[0, 200]} at #{offset}, read back" if @trace
      begin
        read = offset.zero? && chance(0.5) ? :read_object : :get_object
        catch(:fuzz_escape) { stressed { read == :read_object ? mem.read_object : mem.get_object(offset) } }
        @garbage_raised["(loaded)"] += 1
      rescue TypeError, ArgumentError, IndexError => e # documented
        @garbage_raised[e.class] += 1
      rescue StandardError => e
        @garbage_raised[e.class] += 1
        violation("garbage read #{@index} (seed #{@seed}): #{bytes.inspect[0, 300]} at #{offset} raised " \
                  "#{e.class}: #{e.message[0, 200]}")
      end
      @started = nil
      mem.put_bytes(0, "\0" * [mem.size, 64].min) if chance(0.3)
    end

    def garbage(room)
      r = @rng.rand
      if r < 0.2 then @rng.bytes(@rng.rand(0..[room, 64].min))
      elsif r < 0.35 then "\x04\x08".b + @rng.bytes(@rng.rand(0..32))
      elsif r < 0.5 then "PSM1".b + [pick([0, 1, 2, 7, room, room - 8, 2**32 - 1, @rng.rand(64)])].pack("V") +
        @rng.bytes(@rng.rand(0..32))
      else
        stream = "\x04\x08".b + marshal_object(0)
        stream = mutate(stream) if chance(0.3)
        chance(0.3) ? "PSM1".b + [stream.bytesize].pack("V") + stream : stream
      end
    end

    def mutate(stream)
      s = stream.dup
      case @rng.rand(4)
      when 0 then s.setbyte(@rng.rand(s.bytesize), @rng.rand(256))
      when 1 then s = s.byteslice(0, @rng.rand(s.bytesize))
      when 2 then s.insert(@rng.rand(s.bytesize + 1), @rng.bytes(@rng.rand(1..4)))
      else s += @rng.bytes(@rng.rand(1..8))
      end
      s
    end

    # marshal.c's w_long.
    def mlong(n)
      return "\x00".b if n.zero?
      return [n + 5].pack("c") if n.positive? && n < 123
      return [n - 5].pack("c") if n.negative? && n > -124

      bytes = [n].pack("q<").bytes
      len = 8
      len -= 1 while len > 1 && bytes[len - 1] == (n.negative? ? 0xff : 0)
      len = [len, 4].min
      [n.negative? ? -len : len].pack("c") + bytes.first(len).pack("C*")
    end

    def mbytes(str) = mlong(str.bytesize) + str.b

    def msym(_depth)
      case @rng.rand(5)
      when 0 then ";".b + mlong(@rng.rand(0..3))
      when 1 then "I:".b + mbytes(pick(%w[@a E encoding])) + mlong(1) + ":".b + mbytes("E") + pick(%w[T F 0])
      else ":".b + mbytes(pick(CLASS_NAMES + %w[@a @b E encoding ruby2_keywords_flag a]))
      end
    end

    # A random, mostly well-formed Marshal stream for one object, with random counts and class names.
    def marshal_object(depth)
      return "0".b if depth > 8 && !chance(0.05)

      count = -> { pick([0, 1, 2, 3, @rng.rand(0..6), -1, 2**30, 2**31 - 1, 200]) }
      elements = ->(n, per) { Array.new([n, 6].min.clamp(0, 6)) { per.call }.join }
      case @rng.rand(24)
      when 0 then pick(%w[0 T F]).b
      when 1 then "i".b + mlong(pick([0, 1, -1, 122, 123, -124, 255, 2**30, -2**31]))
      when 2 then "\"".b + mbytes(@rng.bytes(@rng.rand(0..8)))
      when 3 then msym(depth)
      when 4 then "@".b + mlong(@rng.rand(-1..4))
      when 5 then "f".b + mbytes(pick(%w[1.5 nan inf -inf 1e999 x 0]))
      when 6 then "l".b + pick(%w[+
                                  -]) + mlong(n = pick([0, 1, 3, 2**30, -1])) + @rng.bytes([n.clamp(0, 8) * 2, 16].min)
      when 7 then "/".b + mbytes(pick(["a", "(", "[", "\\", "a{2,1}", "(?<n>x)\\k<n>",
                                       ""])) + [@rng.rand(0..7)].pack("C")
      when 8, 9 then "[".b + mlong(n = count.call) + elements.call(n, -> { marshal_object(depth + 1) })
      when 10 then "{".b + mlong(n = count.call) + elements.call(n, -> { marshal_object(depth + 1) * 2 })
      when 11 then "}#{mlong(n = count.call)}#{elements.call(n, -> { marshal_object(depth + 1) * 2 })}0".b
      when 12, 13 then "I".b + marshal_object(depth + 1) + mlong(n = count.call) +
        elements.call(n, -> { msym(depth) + marshal_object(depth + 1) })
      when 14 then "o".b + msym(depth) + mlong(n = count.call) + elements.call(n, -> { "#{msym(depth)}i\x06".b })
      when 15 then "u".b + msym(depth) + mbytes(@rng.bytes(@rng.rand(0..12)))
      when 16 then "U".b + msym(depth) + marshal_object(depth + 1)
      when 17 then "e".b + msym(depth) + marshal_object(depth + 1)
      when 18 then "C".b + msym(depth) + marshal_object(depth + 1)
      when 19 then "S".b + msym(depth) + mlong(n = count.call) + elements.call(n, -> { "#{msym(depth)}0".b })
      when 20 then "d".b + msym(depth) + marshal_object(depth + 1)
      when 21 then pick(%w[c m M]).b + mbytes(pick(CLASS_NAMES))
      when 22 then deep_nesting(@rng.rand(150..1200)) # around the nesting limit
      else @rng.bytes(@rng.rand(1..3))
      end
    end

    def deep_nesting(n)
      case @rng.rand(4)
      when 0 then "#{"[\x06" * n}0"
      when 1 then "#{"I[\x06" * (n / 2)}0#{"\x00" * (n / 2)}"
      when 2 then "#{"{\x06" * (n / 6)}0#{"0" * (n / 6)}" # Hash keys
      else "#{"{\x06i\x06" * n}0" # Hash values
      end.b
    end

    # ---------------------------------------------------------------------------------------------------
    # Oracles
    # ---------------------------------------------------------------------------------------------------

    # Whether calls on obj must raise ClosedError. (A closed Queue is a state, as for Thread::Queue: still
    # usable, it drains.)
    def closed?(obj)
      return false if obj.is_a?(PS::Queue)

      obj.respond_to?(:closed?) ? obj.closed? : false
    rescue StandardError
      false
    end

    # What a failed call must leave unchanged (nil: nothing checked).
    def state(obj)
      case obj
      when PS::SharedMemory then obj.size <= 4096 ? obj.get_bytes(0, obj.size) : nil
      when PS::Semaphore then obj.value
      when PS::SemaphoreMutex then obj.instance_variable_get(:@semaphore).then { |s| s.closed? ? nil : s.value }
      when PS::Mutex then [obj.locked?, obj.owned?]
      when PS::Monitor then [obj.mon_locked?, obj.mon_count]
      when PS::Monitor::ConditionVariable then obj.instance_variable_get(:@monitor).then { |m| state(m) }
      when PS::MonitorMixin then state(obj.instance_variable_get(:@mon_data))
      when PS::AtomicInteger then obj.value
      when PS::Counters then obj.to_a
      when PS::Event then obj.set?
      when PS::CountDownLatch then obj.count
      when PS::Barrier then [obj.number_waiting, obj.broken?]
      when PS::ReadWriteLock then obj.closed? ? nil : obj.inspect
      when PS::Queue then obj.size # (not closed?: an argument's conversion may close it)
      end
    rescue PS::ClosedError
      nil
    end

    def check(recv, meth, args, outcome, closed_before, before)
      if closed_before && outcome == :returned && gem_method?(recv, meth) && !ALLOWED_AFTER_CLOSE.include?(meth)
        violation("#{where(recv, meth, args)} returned on a closed object")
      end
      return if outcome == :returned || before.nil?

      after = state(recv)
      return if after.nil? || after == before

      violation("#{where(recv, meth, args)} raised #{outcome.class} (#{outcome.message[0, 100]}) but changed " \
                "#{before.inspect[0, 80]} to #{after.inspect[0, 80]}")
    end

    def where(recv, meth, args)
      "call #{@index} (seed #{@seed}): #{describe(recv)}.#{meth}(#{args.map { |a| describe(a) }.join(", ")})"
    end

    # Checked after every call: no waiter left behind, no lock held by anyone but this thread.
    def check_always(obj)
      return if closed?(obj)

      bad = case obj
            when PS::Semaphore, PS::ConditionVariable then "waiters=#{obj.waiters}" unless obj.waiters.zero?
            when PS::Barrier then "waiting=#{obj.number_waiting}" unless obj.number_waiting.zero?
            when PS::Mutex then "locked but not owned" if obj.locked? && !obj.owned?
            when PS::Monitor then "locked but not owned" if obj.mon_locked? && !obj.mon_owned?
            when PS::Monitor::ConditionVariable then return check_always(obj.instance_variable_get(:@cond))
            when PS::SemaphoreMutex then return check_always(obj.instance_variable_get(:@semaphore))
            when PS::MonitorMixin then return check_always(obj.instance_variable_get(:@mon_data))
            end
      violation("after call #{@index} (seed #{@seed}): #{describe(obj)}: #{bad}") if bad
    rescue PS::ClosedError
      nil
    end

    def gem_method?(recv, meth)
      owner = recv.method(meth).owner
      owner.name.to_s.start_with?("ProcessShared") && owner != PS::MonitorMixin
    rescue NameError
      false
    end

    # Gives back every read lock and the write lock the fuzzing thread holds on a ReadWriteLock.
    def release_all(rw)
      loop { rw.release_read_lock }
    rescue PS::ProcessError
      rw.release_write_lock if rw.write_locked?
    end

    def check_invariants
      @pool.each do |obj|
        case obj
        when PS::Mutex
          next if obj.closed?

          violation("end: #{describe(obj)} locked but not owned") if obj.locked? && !obj.owned?
          obj.unlock if obj.owned?
          obj.synchronize { violation("end: #{describe(obj)} not owned in synchronize") unless obj.owned? }
          violation("end: #{describe(obj)} still locked") if obj.locked?
        when PS::Monitor
          next if obj.closed?

          obj.exit while obj.mon_owned?
          violation("end: #{describe(obj)} still locked") if obj.mon_locked?
        when PS::Semaphore
          next if obj.closed?

          violation("end: #{describe(obj)} has waiters") unless obj.waiters.zero?
          v = obj.value
          obj.synchronize { nil } if v.positive?
          violation("end: #{describe(obj)} value #{v} became #{obj.value}") unless obj.value == v
        when PS::ConditionVariable
          violation("end: #{describe(obj)} has waiters") unless obj.closed? || obj.waiters.zero?
        when PS::ReadWriteLock
          next if obj.closed?

          release_all(obj)
          violation("end: #{describe(obj)} has waiters") if obj.has_waiters?
          violation("end: #{describe(obj)} still held") unless obj.try_write_lock && obj.release_write_lock
        when PS::SharedMemory
          if obj.closed?
            begin
              obj.get_bytes(0, 1)
              violation("end: closed #{describe(obj)} still readable")
            rescue PS::ClosedError
              nil
            end
          else
            obj.put_bytes(0, "\x5a".b)
            violation("end: #{describe(obj)} lost a write") unless obj.get_bytes(0, 1) == "\x5a".b
          end
        end
      rescue StandardError => e
        violation("end: #{describe(obj)}: #{e.class}: #{e.message}")
      end
    end

    def describe(obj)
      case obj
      when String then obj.bytesize > 40 ? "#{obj[0, 20].inspect}...(#{obj.bytesize} bytes)" : obj.inspect
      when Array then obj.size > 8 ? "[...#{obj.size} elements]" : "[#{obj.map { |o| describe(o) }.join(", ")}]"
      when BasicObject then obj.inspect[0, 120]
      else "#<BasicObject>"
      end
    rescue StandardError
      "#<#{obj.class rescue "?"}>" # rubocop:disable Style/RescueModifier
    end
  end
end

# The child: `ruby spec/fuzz_spec.rb --child SEED CALLS STRESS_CALLS TRACE` writes its report (Marshal) to stdout.
# A fresh Ruby rather than a fork of RSpec: its heap is small enough for GC.stress to be affordable.
if $PROGRAM_NAME == __FILE__ && ARGV.first == "--child"
  _, seed, calls, stress_calls, trace = ARGV
  out = $stdout.dup
  $stdout.reopen($stderr) # anything else printed goes to stderr
  # Enumerable's any?(pattern) { } and the like warn that the block is not used, and Marshal.load warns about
  # odd Regexps it loads from garbage: expected here.
  def Warning.warn(msg, ...)
    msg.include?("given block not used") || msg.start_with?("<internal:marshal>") ? nil : super
  end
  runner = ProcessSharedFuzz::Runner.new(seed: Integer(seed), calls: Integer(calls),
                                         stress_calls: Integer(stress_calls), trace: trace == "1")
  runner.run
  out.write(Marshal.dump(runner.report))
  out.close
  exit!(0)
end

return unless defined?(RSpec)

RSpec.describe "Ruby API fuzz", timeout: false do
  def format_counts(counts)
    counts.sort_by { |k, v| [-v, k.to_s] }.map { |k, v| "#{k}: #{v}" }.join(", ")
  end

  # Runs the fuzz child (under the command prefix `wrap`, with extra environment `env`) and checks its report.
  def fuzz(calls:, stress_calls:, wrap: [], env: {})
    seed = Integer(ENV.fetch("FUZZ_SEED") { Random.new_seed % 1_000_000_000 })
    replay = "#{env.map { |k, v| "#{k}=#{v} " }.join}FUZZ_SEED=#{seed} FUZZ_CALLS=#{calls} " \
             "FUZZ_STRESS_CALLS=#{stress_calls} rspec spec/fuzz_spec.rb"
    reader, writer = IO.pipe
    start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    pid = Process.spawn(env, *wrap, RbConfig.ruby, __FILE__, "--child", seed.to_s, calls.to_s, stress_calls.to_s,
                        ENV.fetch("FUZZ_TRACE", "0"), out: writer)
    (@__children ||= []) << pid # killed if the example fails or times out
    writer.close
    # EOF when the child exits (or dies). Its watchdog ends it if a call hangs; this deadline is for a hang
    # that keeps even the watchdog from running (a native call spinning with the GVL held).
    limit = 120 + (calls / 2000.0) + (stress_calls * 0.2)
    data = +""
    loop do
      chunk = reader.read_nonblock(65_536, exception: false)
      break if chunk.nil?
      next data << chunk if chunk.is_a?(String)

      left = start + limit - Process.clock_gettime(Process::CLOCK_MONOTONIC)
      raise "fuzz: the child did not finish within #{limit.round}s (killed it); replay: #{replay}" if left <= 0

      reader.wait_readable(left)
    end
    reader.close
    _, status = Process.waitpid2(pid)
    @__children.delete(pid)
    elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - start
    report = data.empty? ? nil : Marshal.load(data) # rubocop:disable Security/MarshalLoad -- our own child's report

    summary = "fuzz: seed #{seed}, #{calls} calls + #{stress_calls} under GC.stress in #{elapsed.round(1)}s " \
              "(replay: #{replay})"
    puts "\n#{summary}"
    if report && (ENV["FUZZ_VERBOSE"] == "1" || !status.success? || report[:violation_count].positive?)
      puts "  raised: #{format_counts(report[:raised])}"
      puts "  garbage reads: #{format_counts(report[:garbage_raised])}"
      puts "  stats: #{format_counts(report[:stats])}"
    end
    expect(status.success?).to be(true), "the fuzz child did not exit cleanly: #{status.inspect}\n#{summary}"
    expect(report).not_to be_nil, "the fuzz child sent no report\n#{summary}"
    violations = "#{report[:violation_count]} violation(s):\n  #{report[:violations].join("\n  ")}"
    expect(report[:violations]).to be_empty, "#{violations}\n#{summary}"
    expect(report[:stats][:steps]).to eq(calls + stress_calls)
    report
  ensure
    Dir["/dev/shm/process_shared.fuzz.#{pid}.*"].each { |f| File.unlink(f) } if pid
  end

  it "survives random calls with random arguments, closed objects and garbage in shared memory",
     lifecycle: false do # it has its own GC.stress phase
    fuzz(calls: Integer(ENV.fetch("FUZZ_CALLS", 100_000)), stress_calls: Integer(ENV.fetch("FUZZ_STRESS_CALLS", 300)))
  end

  # Issue 10, point 8: named objects (a few names shared by every class) in a /dev/shm of 1 MiB, in a
  # private mount namespace: reopening a name as another class or size, and running out of space, raise
  # cleanly (ENOSPC, ENOMEM, ProcessShared::Error), never a signal.
  it "survives the same with named objects in a full /dev/shm", lifecycle: false do
    tiny = ["unshare", "-m", "--", "sh", "-c",
            'mount --make-rprivate / && mount -t tmpfs -o size=1m tmpfs /dev/shm && exec "$@"', "sh"]
    skip "needs root and unshare -m" unless Process.uid.zero? && system(*tiny, "true", err: File::NULL)

    report = fuzz(calls: Integer(ENV.fetch("FUZZ_NAMED_CALLS", 20_000)), stress_calls: 100, wrap: tiny,
                  env: { "FUZZ_NAMED" => "1" })
    expect(report[:stats].keys.grep(/\Amake /)).not_to be_empty, "no name was ever refused: #{report[:stats]}"
  end
end
