# The seed README's "Transfer Objects Across Processes" example, verbatim below the marker. It ends with
# minitest's spec-style `must_equal`; this stand-in checks the value and prints it, so the example runs as
# written without a test framework.
$LOAD_PATH.unshift File.expand_path("../../lib", __dir__)
require "process_shared"

class Object
  def must_equal(expected)
    raise "expected #{expected.inspect}, got #{inspect}" unless self == expected

    puts "transferred: #{inspect}"
    self
  end
end

# ---- verbatim from the original gem's README ----
# allocate a sufficient memory block
mem = ProcessShared::SharedMemory.new(1024)

# sub process can write (serialize) object to memory (with bounds checking)
pid = fork do
  mem.write_object(['a', 'b'])
end

Process.wait(pid)

# parent process can read the object back (synchronizing access
# with a Mutex left as an excercie to reader)
mem.read_object.must_equal ['a', 'b']
