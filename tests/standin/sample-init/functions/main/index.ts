// Sample main service: the stand-in only checks that it exists.
console.log("main");
