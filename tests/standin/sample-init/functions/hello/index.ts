// Sample function: the stand-in answers for it because its folder exists.
console.log("hello");
